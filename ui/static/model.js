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

// A model's deployments over time, live: any event of the model (from this page's forms
// or from anywhere else) reloads the rows from the server, which renders them; one load
// at a time, and one more if events came meanwhile.
(function () {
  "use strict";
  const rows = document.getElementById("timeline");
  if (!rows || !rows.dataset.modelId) {
    return;
  }
  const id = encodeURIComponent(rows.dataset.modelId);
  const source = new EventSource("/ui/activity/stream?model_id=" + id + "&after=" + rows.dataset.after);
  let loading = false;
  let again = false;

  async function reload() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    do {
      again = false;
      const answer = await fetch("/ui/models/" + id + "/timeline", {
        headers: { "X-ModelLedger-Background": "1" },  // (not the user's own doing)
      });
      if (answer.redirected || !answer.ok) {  // signed out meanwhile: leave the rows be
        source.close();
        break;
      }
      const parsed = new DOMParser().parseFromString(
        "<table><tbody>" + (await answer.text()) + "</tbody></table>", "text/html"
      );
      rows.replaceChildren(...parsed.querySelectorAll("tbody > tr"));
    } while (again);
    loading = false;
  }

  source.addEventListener("change", reload);
})();

// An editor's deploy, roll-back and undeploy forms stay on the page: sent in the
// background (the same post, token and origin), their outcome said in the status line;
// the timeline above shows the change as the model's events arrive.
(function () {
  "use strict";
  const status = document.getElementById("action-status");
  if (!status) {
    return;
  }
  for (const form of document.querySelectorAll("form[data-stay]")) {
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;  // (one click, one command)
      status.textContent = "Sending…";
      const body = new URLSearchParams(new FormData(form));  // (a form's own encoding)
      const answer = await fetch(form.action, { method: "POST", body });
      button.disabled = false;
      if (answer.redirected && new URL(answer.url).pathname === "/ui/login") {
        status.textContent = "Refused: the session has ended; sign in again.";
        return;
      }
      if (answer.ok) {
        status.textContent = "Done: " + form.getAttribute("aria-label") + ".";
        form.reset();
        return;
      }
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const problem = page.querySelector(".problem");
      status.textContent = "Refused: " + (problem ? problem.textContent : answer.statusText);
    });
  }
})();
