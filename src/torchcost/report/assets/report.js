// The module tree (collapsible, sortable among siblings) and the sortable operator table. No dependencies.
(function () {
  "use strict";

  function rowsOf(table) { return Array.from(table.tBodies[0].rows); }

  // Each row holds data-name and data-parent; children are kept under their parent in every order.
  function setUpTree(table) {
    var rows = rowsOf(table);
    var children = new Map();
    rows.forEach(function (row, index) {
      row.dataset.index = String(index);
      var parent = row.dataset.parent;
      if (parent === undefined) return;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(row);
    });
    var roots = rows.filter(function (row) { return row.dataset.parent === undefined; });
    var collapsed = new Set();
    rows.forEach(function (row) {
      var button = row.querySelector("button.toggle");
      if (!button) return;
      if (!children.has(row.dataset.name)) { button.style.visibility = "hidden"; return; }
      if (Number(row.dataset.depth) >= Number(table.dataset.openDepth)) collapsed.add(row.dataset.name);
      button.addEventListener("click", function () {
        if (collapsed.has(row.dataset.name)) collapsed.delete(row.dataset.name); else collapsed.add(row.dataset.name);
        refresh();
      });
    });

    function refresh() {
      var body = table.tBodies[0];
      function place(row, hidden) {
        body.appendChild(row);
        row.hidden = hidden;
        var button = row.querySelector("button.toggle");
        if (button) button.textContent = collapsed.has(row.dataset.name) ? "\u25B8" : "\u25BE";
        (children.get(row.dataset.name) || []).forEach(function (child) {
          place(child, hidden || collapsed.has(row.dataset.name));
        });
      }
      roots.forEach(function (row) { place(row, false); });
    }

    function sortBy(column, descending) {
      var compare = comparer(column, descending);
      roots.sort(compare);
      children.forEach(function (list) { list.sort(compare); });
      refresh();
    }
    makeSortable(table, sortBy);
    table.parentElement.parentElement.querySelectorAll("button[data-tree]").forEach(function (button) {
      button.addEventListener("click", function () {
        collapsed.clear();
        if (button.dataset.tree === "collapse") children.forEach(function (_, name) { collapsed.add(name); });
        refresh();
      });
    });
    refresh();
  }

  function setUpFlat(table) {
    rowsOf(table).forEach(function (row, index) { row.dataset.index = String(index); });
    makeSortable(table, function (column, descending) {
      var body = table.tBodies[0];
      rowsOf(table).sort(comparer(column, descending)).forEach(function (row) { body.appendChild(row); });
    });
  }

  // Numbers sort by their exact data-value; text sorts alphabetically; the original order breaks ties.
  function comparer(column, descending) {
    return function (a, b) {
      var x = a.cells[column], y = b.cells[column];
      var order;
      if (x.dataset.value !== undefined) order = Number(x.dataset.value) - Number(y.dataset.value);
      else order = x.textContent.trim().localeCompare(y.textContent.trim());
      if (order === 0) return Number(a.dataset.index) - Number(b.dataset.index);
      return descending ? -order : order;
    };
  }

  function makeSortable(table, sortBy) {
    var headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (header, column) {
      header.addEventListener("click", function () {
        var descending = header.getAttribute("aria-sort") !== "descending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortBy(column, descending);
      });
    });
  }

  // Charts are drawn while the page is still being parsed; fit them to their final boxes.
  if (window.Plotly) {
    document.querySelectorAll(".js-plotly-plot").forEach(function (chart) { window.Plotly.Plots.resize(chart); });
  }
  document.querySelectorAll("table.tree").forEach(setUpTree);
  document.querySelectorAll("table.flat").forEach(setUpFlat);
})();
