/* The dashboard's charts, drawn with Chart.js from the numbers the page passes in
   #dashboard-data (json_script: no inline script under the Content-Security-Policy).
   Each chart has a table of the same numbers under it. */
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  // Colours told apart by people with the common colour blindnesses (Okabe–Ito).
  var colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                 "#000000", "#F0E442"];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;

  function periods(rows) {
    var seen = {};
    rows.forEach(function (row) { seen[row.period] = true; });
    return Object.keys(seen).sort();
  }

  function byPeriod(rows, series, field, labels) {
    var values = {};
    rows.forEach(function (row) {
      if (row.series === series) values[row.period] = row[field];
    });
    return labels.map(function (label) {
      return values[label] === undefined ? null : values[label];
    });
  }

  function lines(id, rows, series, field, yTitle, extra) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    var labels = periods(rows);
    new Chart(canvas, {
      type: "line",
      data: {
        labels: labels,
        datasets: series.map(function (one, n) {
          return {
            label: one.label,
            data: byPeriod(rows, one.key, field, labels),
            borderColor: colours[n % colours.length],
            backgroundColor: colours[n % colours.length],
            spanGaps: true,
            tension: 0
          };
        })
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { y: { title: { display: true, text: yTitle } } },
        plugins: {
          legend: { display: series.length > 1 },
          tooltip: { callbacks: { afterLabel: extra } }
        }
      }
    });
  }

  var margins = {};
  data.points.forEach(function (p) {
    margins[p.series + "|" + p.period] = p.margin_of_error;
  });
  var trendSeries = data.series;
  lines("trend", data.points, trendSeries, "score", "", function (item) {
    var key = trendSeries[item.datasetIndex].key + "|" + item.label;
    var margin = margins[key];
    return margin === null || margin === undefined ? "" :
      "± " + margin + " (" + data.words.margin + ")";
  });
  lines("rate", data.rates, data.rate_series, "response_rate", data.words.rate);

  var bars = document.getElementById("distribution");
  if (bars) {
    var labels = data.scale.map(String);
    new Chart(bars, {
      type: "bar",
      data: {
        labels: labels,
        datasets: trendSeriesFor(data.distribution).map(function (one, n) {
          var counts = {};
          data.distribution.forEach(function (row) {
            if (row.series === one.key) counts[row.score] = row.responses;
          });
          return {
            label: one.label,
            data: data.scale.map(function (score) { return counts[score] || 0; }),
            backgroundColor: colours[n % colours.length]
          };
        })
      },
      options: {
        scales: { y: { beginAtZero: true, title: { display: true, text: data.words.responses } } },
        plugins: { legend: { display: trendSeriesFor(data.distribution).length > 1 } }
      }
    });
  }

  function trendSeriesFor(rows) {
    var keys = {};
    rows.forEach(function (row) { keys[row.series] = true; });
    var known = data.series.filter(function (one) { return keys[one.key]; });
    return known.length ? known : Object.keys(keys).map(function (key) {
      return { key: key, label: key };
    });
  }
})();
