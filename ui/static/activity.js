// The activity page, live: events stored after the page was made arrive through the
// UI's stream (server-sent events, the session cookie) and are added as rows.
(function () {
  "use strict";
  const rows = document.getElementById("activity-rows");
  if (!rows || !rows.dataset.liveAfter) {
    return;
  }
  const source = new EventSource("/ui/activity/stream?after=" + rows.dataset.liveAfter);

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  source.addEventListener("change", (message) => {
    const item = JSON.parse(message.data);
    if (rows.querySelector('tr[data-position="' + item.position + '"]')) {
      return;  // (shown already: the stream went on after a reconnection)
    }
    const row = document.createElement("tr");
    row.dataset.position = String(item.position);
    cell(row, String(item.position));
    cell(row, item.type);
    const of = cell(row, "");
    if (item.model_id) {
      const link = document.createElement("a");
      link.href = "/ui/models/" + item.model_id;
      link.textContent = "model " + item.model_id.slice(0, 8);
      of.appendChild(link);
    } else if (item.metric) {
      of.textContent = "metric " + item.metric;
    } else if (item.key_id) {
      of.textContent = "key " + item.key_id.slice(0, 8);
    }
    cell(row, item.actor);
    cell(row, item.timestamp);
    rows.appendChild(row);
  });
})();
