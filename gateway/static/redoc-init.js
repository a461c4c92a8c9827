// Starts ReDoc on /redoc. A file rather than an inline script, so the page's
// Content-Security-Policy can allow scripts from the gateway alone.
"use strict";

(function () {
  const root = document.getElementById("redoc");
  Redoc.init(
    root.dataset.specUrl,
    {
      // ReDoc writes its styles into <style> elements as it renders: the policy admits those
      // that carry the nonce it was sent with, and ReDoc puts this one on each.
      nonce: root.dataset.styleNonce,
      // Search runs in a worker made from a blob: URL, which the policy refuses; without
      // this the box would be there and never answer.
      disableSearch: true,
    },
    root,
  );
})();
