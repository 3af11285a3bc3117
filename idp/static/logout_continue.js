// Front-channel logout: the relying parties' iframes delay the page's load event, so continue
// to the relying party's post-logout page once it fires (at the latest after 5 s).
(function () {
  var link = document.getElementById("continue");
  var done = false;
  function go() {
    if (!done) {
      done = true;
      window.location.replace(link.href);
    }
  }
  window.addEventListener("load", go);
  window.setTimeout(go, 5000);
})();
