// The statistics page's charts (Chart.js, vendored): a bar chart of each count the page's
// tables give, from its JSON data block; the tables stay, for readers and keyboards.
(function () {
  "use strict";
  const data = document.getElementById("statistics-data");
  if (!data || typeof Chart === "undefined") {
    return;
  }
  const found = JSON.parse(data.textContent);
  for (const canvas of document.querySelectorAll("canvas[data-counts]")) {
    const counts = found[canvas.dataset.counts] || {};
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: Object.keys(counts),
        datasets: [{ label: canvas.getAttribute("aria-label"), data: Object.values(counts), backgroundColor: "#283593" }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } },
    });
  }
})();
