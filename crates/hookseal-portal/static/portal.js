// hookseal portal: the one script, served by the binary. It only shows
// each <time datetime> in the viewer's own zone (the page says UTC without
// it); every page and action works with scripts off.
"use strict";
document.querySelectorAll("time[datetime]").forEach(function (t) {
  var d = new Date(t.getAttribute("datetime"));
  if (!isNaN(d.getTime())) {
    t.textContent = d.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
  }
});
