// Hyperfleet dashboard: progressive enhancement only. Every page works
// without this file; it adds a confirmation to forms that ask for one.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
