// Starts GraphiQL on GET /graphql. A file, not an inline script: the page's
// Content-Security-Policy runs scripts from this origin only.
//
// The page is served at the endpoint itself, so its own address (with any path prefix a
// proxy adds) is where queries go, and the same address over ws(s) is where
// subscriptions go. The key is the user's to give in the Headers tab: GraphiQL sends those
// headers with each query and as the WebSocket's connection_init payload. It is not kept
// in localStorage (shouldPersistHeaders is off): closing the tab forgets it.
(function () {
  var PLACEHOLDER = '{"Authorization": "Bearer <your key>"}';
  var NO_KEY = "Put your API key in the Headers tab: " + PLACEHOLDER +
    ", then run the query again (and re-fetch the schema for the docs and completion).";

  // Radix's dialogs add a <style> (scroll lock) whose rules depend on the scrollbar's
  // width, so no hash can allow it: the page's policy names a nonce for it instead, and
  // the bundle gives <style> elements the one webpack's global names.
  window.__webpack_nonce__ = document.currentScript.dataset.styleNonce;

  function bearer(headers) {
    for (var name in headers || {}) {
      if (name.toLowerCase() === "authorization") return String(headers[name]);
    }
    return "";
  }

  // Without a key every request is a 401 (the schema's introspection on load too):
  // say what to do instead of asking.
  function withKey(fetcher) {
    return function (params, options) {
      if (!/^Bearer [^<\s]/.test(bearer(options && options.headers))) {
        return Promise.resolve({ errors: [{ message: NO_KEY }] });
      }
      return fetcher(params, options);
    };
  }

  var endpoint = window.location.origin + window.location.pathname;
  var socket = endpoint.replace(/^http/, "ws");
  var fetcher = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: socket });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: withKey(fetcher),
      defaultQuery:
        "# Put your API key in the Headers tab below, then run a query (Ctrl-Enter).\n" +
        "{\n  metricDefinitions {\n    name\n  }\n}\n",
      defaultHeaders: PLACEHOLDER,
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false,
    })
  );
})();
