// The live rows (htmx's sse extension): a row already shown is not added again. After a
// failed reconnection the extension opens the stream anew from the page's first position,
// and the events since then come again.
(function () {
  "use strict";
  document.addEventListener("htmx:sseBeforeMessage", (event) => {
    const position = event.detail.lastEventId;
    if (position && document.querySelector('tr[data-position="' + CSS.escape(position) + '"]')) {
      event.preventDefault();
    }
  });
})();
