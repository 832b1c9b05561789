/* Staff pages: no inline script anywhere, so the CSP can forbid it.
   A button with data-print opens the browser's print dialogue (the police print). */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-print]") : null;
    if (target) { event.preventDefault(); window.print(); }
  });
})();
