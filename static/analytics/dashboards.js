/* Draws every dashboard chart from its data, placed in the page by Django's json_script
   (<canvas data-chart-source="<id of the JSON script>">). The table under each chart holds the
   same numbers. Series differ by point style and dash pattern as well as by colour. */
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626"];
  var POINTS = ["circle", "triangle", "rect", "star", "crossRot"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 2]];

  function dataset(series, index, type) {
    var colour = COLOURS[index % COLOURS.length];
    return {
      label: series.label,
      data: series.data,
      borderColor: colour,
      backgroundColor: type === "bar" ? colour + "cc" : colour,
      borderDash: DASHES[index % DASHES.length],
      pointStyle: POINTS[index % POINTS.length],
      pointRadius: 3,
      borderWidth: 2,
      spanGaps: false
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var axis = { beginAtZero: true };
    if (spec.percent) {
      axis.ticks = { callback: function (value) { return value + "%"; } };
    }
    canvas.chart = new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (series, index) { return dataset(series, index, spec.type); })
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { labels: { usePointStyle: true } } },
        scales: { y: axis }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart-source]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
