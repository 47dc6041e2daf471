/*
 * A stand-in for bootstrap-table, enough for the tables of Great Expectations' Data Docs pages.
 *
 * No Python package ships bootstrap-table and the API serves nothing from a CDN, so the Data Docs
 * pages get this instead: columns and rows from the same options, sorting (the initial sortName
 * and sortOrder, then by clicking a sortable header), a search box, the row attributes and styles
 * the page asks for, and the click-row.bs.table event its rows use as links. Methods it does not
 * know (filter controls) do nothing. Cell values are the HTML the page's own data carries, as
 * bootstrap-table renders them.
 */
(function ($) {
  "use strict";

  var DATA_KEY = "datadocs-table";

  function callable(value) {
    if (typeof value === "function") return value;
    if (typeof value === "string" && typeof window[value] === "function") return window[value];
    return null;
  }

  function truthy(value) {
    return value === true || value === "true";
  }

  function plain(value) {
    if (value === undefined || value === null) return "";
    return typeof value === "string" ? $("<div>").html(value).text().trim() : value;
  }

  function Table(element, options) {
    var self = this;
    this.$table = $(element);
    this.options = options;
    this.columns = options.columns || [];
    this.rows = (options.data || []).slice();
    this.query = "";
    this.sortOrder = options.sortOrder === "desc" ? "desc" : "asc";
    this.sortColumn = null;
    this.columns.forEach(function (column) {
      if (options.sortName && (column.field === options.sortName || column.sortName === options.sortName)) {
        self.sortColumn = column;
      }
    });
    this.build();
  }

  Table.prototype.build = function () {
    var self = this;
    var $table = this.$table.addClass("table table-hover datadocs-table").empty();
    var $row = $("<tr>").appendTo($("<thead>").appendTo($table));
    this.columns.forEach(function (column) {
      var $th = $("<th scope='col'>").text(column.title || column.field || "");
      if (column.align) $th.addClass("text-" + column.align);
      if (truthy(column.sortable)) {
        $th.addClass("sortable").attr("tabindex", "0").on("click keydown", function (event) {
          if (event.type === "keydown" && event.key !== "Enter") return;
          if (self.sortColumn === column) {
            self.sortOrder = self.sortOrder === "asc" ? "desc" : "asc";
          } else {
            self.sortColumn = column;
            self.sortOrder = "asc";
          }
          self.render();
        });
      }
      $row.append($th);
    });
    this.$body = $("<tbody>").appendTo($table);
    if (truthy(this.options.search)) {
      this.$search = $("<input type='search' class='form-control form-control-sm datadocs-table-search' placeholder='Search' aria-label='Search the table'>");
      this.$search.on("input", function () {
        self.query = this.value.trim().toLowerCase();
        self.render();
      });
      var $toolbar = this.options.toolbar ? $(this.options.toolbar) : $();
      if ($toolbar.length) $toolbar.append(this.$search); else this.$search.insertBefore($table);
    }
    this.render();
  };

  Table.prototype.visibleRows = function () {
    var self = this;
    var rows = this.rows.slice();
    if (this.query) {
      rows = rows.filter(function (row) {
        return self.columns.some(function (column) {
          return String(plain(row[column.field])).toLowerCase().indexOf(self.query) >= 0;
        });
      });
    }
    if (this.sortColumn) {
      var key = this.sortColumn.sortName || this.sortColumn.field;
      var sign = this.sortOrder === "desc" ? -1 : 1;
      rows.sort(function (a, b) {
        var x = plain(a[key]), y = plain(b[key]);
        return x < y ? -sign : x > y ? sign : 0;
      });
    }
    return rows;
  };

  Table.prototype.render = function () {
    var self = this;
    var rowStyle = callable(this.options.rowStyle);
    var rowAttributes = callable(this.options.rowAttributes);
    var rows = this.visibleRows();
    this.$body.empty();
    rows.forEach(function (row, index) {
      var $tr = $("<tr>");
      if (rowAttributes) $tr.attr(rowAttributes(row, index) || {});
      if (rowStyle) {
        var style = rowStyle(row, index) || {};
        if (style.classes) $tr.addClass(style.classes);
        if (style.css) $tr.css(style.css);
      }
      self.columns.forEach(function (column) {
        var value = row[column.field];
        var $td = $("<td>").html(value === undefined || value === null ? "" : String(value));
        if (column.align) $td.addClass("text-" + column.align);
        $tr.append($td);
      });
      $tr.on("click", function (event) {
        if ($(event.target).closest("a").length) return; // a link inside the cell wins
        self.$table.trigger("click-row.bs.table", [row, $tr, null]);
      });
      self.$body.append($tr);
    });
    if (!rows.length) {
      $("<tr class='no-records-found'>").append(
        $("<td>").attr("colspan", Math.max(this.columns.length, 1)).text("No matching records found")
      ).appendTo(this.$body);
    }
  };

  Table.prototype.resetSearch = function () {
    this.query = "";
    if (this.$search) this.$search.val("");
    this.render();
  };

  $.fn.bootstrapTable = function (option) {
    var args = Array.prototype.slice.call(arguments, 1);
    return this.each(function () {
      var table = $.data(this, DATA_KEY);
      if (typeof option === "string") {
        if (table && option !== "constructor" && typeof Table.prototype[option] === "function") {
          table[option].apply(table, args);
        }
        return;
      }
      $.data(this, DATA_KEY, new Table(this, $.extend({}, option)));
    });
  };
})(jQuery);
