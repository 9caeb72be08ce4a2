// Vigil console behaviour. No inline scripts anywhere: the Content-Security-Policy forbids them.
(function () {
  "use strict";

  // Selects marked data-autosubmit submit their form on change (the account/region switcher).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]")) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });

  // Buttons marked data-confirm ask before submitting (destructive actions).
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // "Select all" checkboxes: data-select-all="name" toggles every checkbox of that name.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("input[data-select-all]")) {
      var name = el.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
        box.checked = el.checked;
      });
    }
  });

  // Copy buttons: data-copy-target="#id" copies that element's text.
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-copy-target]") : null;
    if (!el) { return; }
    var source = document.querySelector(el.getAttribute("data-copy-target"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent).then(function () {
        el.textContent = "Copied";
      });
    }
  });

  // data-close-panel="#id" empties that side panel instead of following the link.
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-close-panel]") : null;
    if (!el) { return; }
    var panel = document.querySelector(el.getAttribute("data-close-panel"));
    if (panel) {
      event.preventDefault();
      panel.innerHTML = "";
    }
  });
})();
