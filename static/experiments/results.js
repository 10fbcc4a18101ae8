/* The results page's two charts that the dashboards' script does not draw: the uplift of each arm
   with its intervals (floating bars from low to high, one per method, and the estimate as a
   point), and the Kaplan-Meier curves of time to activation (step lines on an hours axis). Their
   data is placed by Django's json_script (<canvas data-experiment-chart="<id of the JSON>">); the
   table under each chart holds the same numbers. */
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626"];
  var POINTS = ["circle", "triangle", "rect", "star", "crossRot"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 2]];

  function percentTicks(value) {
    return value + "%";
  }

  function intervals(spec) {
    var datasets = spec.datasets.map(function (series, index) {
      var colour = COLOURS[index % COLOURS.length];
      return {
        type: "bar",
        label: series.label,
        data: series.data,
        backgroundColor: colour + "66",
        borderColor: colour,
        borderWidth: 2,
        borderSkipped: false,
        barPercentage: 0.9,
        categoryPercentage: 0.7,
        order: 2
      };
    });
    datasets.push({
      type: "line",
      label: spec.estimate.label,
      data: spec.estimate.data,
      showLine: false,
      pointStyle: "rectRot",
      pointRadius: 7,
      borderColor: "#111827",
      backgroundColor: "#111827",
      order: 1
    });
    return {
      type: "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: "x",
        scales: {
          y: {
            ticks: { callback: percentTicks },
            title: { display: true, text: "relative uplift over control" },
            // No effect (0%) drawn darker: an interval entirely above it beats control.
            grid: { color: function (context) { return context.tick && context.tick.value === 0 ? "#374151" : "rgba(0, 0, 0, 0.1)"; } }
          }
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = context.raw;
                if (Array.isArray(value)) {
                  return context.dataset.label + ": " + value[0] + "% to " + value[1] + "%";
                }
                return context.dataset.label + ": " + value + "%";
              }
            }
          }
        }
      }
    };
  }

  function survival(spec) {
    return {
      type: "line",
      data: {
        datasets: spec.datasets.map(function (series, index) {
          var colour = COLOURS[index % COLOURS.length];
          return {
            label: series.label,
            data: series.data,
            stepped: "before",
            borderColor: colour,
            backgroundColor: colour,
            borderDash: DASHES[index % DASHES.length],
            pointStyle: POINTS[index % POINTS.length],
            pointRadius: 0,
            pointHitRadius: 6,
            borderWidth: 2
          };
        })
      },
      options: {
        scales: {
          x: { type: "linear", min: 0, title: { display: true, text: "hours since entering the path" } },
          y: {
            min: 0,
            max: 100,
            ticks: { callback: percentTicks },
            title: { display: true, text: "not yet activated" }
          }
        }
      }
    };
  }

  var BUILDERS = { intervals: intervals, survival: survival };

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-experiment-chart"));
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var config = BUILDERS[spec.kind](spec);
    config.options.animation = false;
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    config.options.plugins = config.options.plugins || {};
    config.options.plugins.legend = { labels: { usePointStyle: true } };
    canvas.chart = new Chart(canvas, config);
    canvas.setAttribute("data-drawn", "true");
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-experiment-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
