// pgviz: small accessibility fixes to the theme's markup (checked by tests/test_accessibility.py
// with axe-core).  Runs once the page is parsed; nothing here loads anything.
(function () {
  function hideIcons(button) {
    button.querySelectorAll("i[title], svg").forEach(function (icon) {
      if (icon.getAttribute("aria-hidden") === "true" && !icon.hasAttribute("title")
          && !icon.querySelector("title")) return;  // done (and no mutation loop)
      icon.removeAttribute("title");
      icon.removeAttribute("aria-labelledby");
      icon.removeAttribute("role");
      icon.querySelectorAll("title").forEach(function (t) { t.remove(); });
      icon.setAttribute("aria-hidden", "true");
    });
  }
  function fix() {
    // The search buttons show "Search Ctrl+K" but are named "Search": name them by what they show.
    document.querySelectorAll(".search-button-field[aria-label]").forEach(function (b) {
      b.setAttribute("aria-label", b.textContent.replace(/\s+/g, " ").trim());
    });
    // The colour-mode button is named "Color mode"; its icons carry titles (Light, Dark, ...)
    // that count as its visible text.  The icons are decoration: hide them from the name.
    // Font Awesome turns each <i title> into <svg role=img><title>, maybe later: watch.
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      hideIcons(button);
      new MutationObserver(function () { hideIcons(button); })
        .observe(button, {childList: true, subtree: true});
    });
    // The bibliography is a role=list whose entries are doc-biblioentry, not listitems.
    document.querySelectorAll('.citation-list[role="list"]').forEach(function (l) {
      l.removeAttribute("role");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
})();
