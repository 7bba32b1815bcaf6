// Injected by tests/test_browser.py at the top of every page it serves to headless Chromium.
// Once the page has loaded and MathJax and the widgets have had their chance to render (or 20 s
// of the page's time have passed), it writes what it found as JSON into a hidden pre#modlib-check,
// which `chromium --dump-dom` then hands to the test. window.__modlibExpect says whether MathJax
// and the widget scripts are served (they are not where their local copies are missing).
(function () {
  "use strict";
  var expect = window.__modlibExpect || { math: true, widgets: true };
  var errors = [];

  // Scripts and styles that fail to load (capture: their error events do not bubble; images are
  // checked below), uncaught exceptions and unhandled promise rejections.
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      if (t.tagName !== "IMG") errors.push("could not load " + (t.src || t.href || t.tagName));
    } else {
      errors.push("uncaught " + (e.message || e.error) + " (" + e.filename + ":" + e.lineno + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    errors.push("unhandled rejection: " + (r && r.message ? r.message : String(r)));
  });
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.images, function (img) { img.loading = "eager"; });
  });

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }
  function text(el) { return (el.textContent || "").replace(/\s+/g, " ").trim(); }
  function short(s) { return s.length > 100 ? s.slice(0, 100) + "…" : s; }

  // Every math element (Sphinx marks them with class "math") holds MathJax's rendering, with
  // neither a TeX error nor an undefined macro (MathJax shows its name in red, as <mtext
  // mathcolor="red">\name</mtext> in the MathML it keeps for screen readers).
  function math() {
    var els = all(".math");
    var undefinedMacros = all('mjx-assistive-mml mtext[mathcolor="red"]').filter(function (e) {
      return text(e).charAt(0) === "\\";
    });
    return {
      n: els.length,
      unrendered: els.filter(function (e) { return !e.querySelector("mjx-container"); })
        .map(function (e) { return short(text(e)); }),
      errors: all("mjx-merror").map(function (e) {
        return e.getAttribute("data-mjx-error") || short(text(e));
      }).concat(undefinedMacros.map(function (e) { return "undefined macro " + text(e); })),
    };
  }

  // Every saved widget view: the widget manager puts a div.widget-subarea before its script tag
  // and renders the view into it.
  function widgets() {
    var views = all('script[type="application/vnd.jupyter.widget-view+json"]');
    return {
      n: views.length,
      unrendered: views.filter(function (v) {
        var area = v.previousElementSibling;
        return !(area && area.classList.contains("widget-subarea") &&
                 area.querySelector(".jupyter-widgets") && area.offsetHeight > 0);
      }).map(function (v) { return short(v.textContent); }),
    };
  }

  // Every image, the widgets' outputs included, has been decoded to a real size; but images on
  // other hosts, which Chromium cannot reach here, are only listed.
  function elsewhere(img) {
    return /^https?:$/.test(new URL(img.src, location.href).protocol) &&
           new URL(img.src, location.href).origin !== location.origin;
  }
  function images() {
    var imgs = all("img");
    return {
      n: imgs.length,
      broken: imgs.filter(function (i) {
        return !elsewhere(i) && !(i.complete && i.naturalWidth > 0);
      }).map(function (i) { return short(i.getAttribute("src") || "(no src)"); }),
      elsewhere: imgs.filter(elsewhere).map(function (i) { return i.src; }),
    };
  }

  // Ordered lists that prose made by accident: a wrapped line that begins with "1. " starts an
  // <ol> inside a paragraph (CommonMark lets only "1." interrupt one), which shows as a paragraph
  // cut short, then a one-item list. A list starting at another number means the same accident
  // after a blank line, or a list split in two.
  function lists() {
    return all("ol").filter(function (ol) {
      if (ol.closest("nav, .bd-sidebar, .toctree-wrapper, .bd-toc")) return false;
      var start = ol.getAttribute("start");
      if (start !== null && start !== "1") return true;
      var prev = ol.previousElementSibling;
      return ol.children.length === 1 && prev && prev.tagName === "P" && !/:$/.test(text(prev));
    }).map(function (ol) {
      var prev = ol.previousElementSibling;
      return short((prev ? text(prev).slice(-50) + " ⏎ " : "") +
                   (ol.getAttribute("start") || "1") + ". " + text(ol));
    });
  }

  // The text of the cell outputs, the outputs inside widgets included (each once).
  function outputs() {
    var selector = ".cell_output, .jp-OutputArea-output";
    return all(selector).filter(function (e) { return !e.parentElement.closest(selector); })
      .map(function (e) { return e.textContent; }).join("\n");
  }

  // Python tracebacks anywhere but in a docstring's example (the API page shows what a wrong
  // argument raises, and the doctests check it).
  function tracebacks() {
    var found = [];
    var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (var node = walk.nextNode(); node; node = walk.nextNode()) {
      if (node.nodeValue.indexOf("Traceback (most recent call last)") >= 0 &&
          !node.parentElement.closest(".doctest, .highlight-pycon, script")) {
        var block = node.parentElement.closest("pre, p, div") || node.parentElement;
        found.push(short(text(block)));
      }
    }
    return found;
  }

  function report(timedOut) {
    var pre = document.createElement("pre");
    pre.id = "modlib-check";
    pre.hidden = true;
    pre.textContent = JSON.stringify({
      timedOut: timedOut, errors: errors, math: math(), widgets: widgets(), images: images(),
      lists: lists(), outputs: outputs(),
      tracebacks: tracebacks(),
      errorBlocks: all(".traceback, .system-message, .problematic").map(function (e) {
        return short(text(e));
      }),
    });
    document.body.appendChild(pre);
  }

  window.addEventListener("load", function () {
    var start = Date.now();
    (function poll() {
      var done = (!expect.math || math().unrendered.length === 0) &&
                 (!expect.widgets || widgets().unrendered.length === 0) &&
                 all("img").every(function (i) { return i.complete || elsewhere(i); });
      if (done) report(false);
      else if (Date.now() - start > 20000) report(true);
      else setTimeout(poll, 100);
    })();
  });
})();
