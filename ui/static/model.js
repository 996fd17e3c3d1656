// A model's page: the chart of one metric across its versions (Chart.js, vendored).
// The versions come in a JSON data block of the page: nothing inline runs.
(function () {
  "use strict";
  const data = document.getElementById("versions-data");
  const canvas = document.getElementById("metric-chart");
  const choice = document.getElementById("chart-metric");
  if (!data || !canvas || !choice || typeof Chart === "undefined") {
    return;
  }
  const versions = JSON.parse(data.textContent);
  let chart = null;

  function draw(metric) {
    const shown = versions.filter((v) => metric in v.metrics);
    const config = {
      type: "line",
      data: {
        labels: shown.map((v) => "v" + v.number),
        datasets: [{ label: metric, data: shown.map((v) => v.metrics[metric]), borderColor: "#283593" }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false },
    };
    if (chart) {
      chart.destroy();
    }
    chart = new Chart(canvas, config);
    canvas.setAttribute("aria-label", metric + " across " + shown.length + " versions");
  }

  choice.addEventListener("change", () => draw(choice.value));
  if (choice.value) {
    draw(choice.value);
  }
})();
