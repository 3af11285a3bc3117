// UKey login (docs/ukey-protocol.md): ask the local agent for the token's certificate, get a
// one-time challenge from the provider, have the agent sign it after the PIN, post the result.
// The PIN goes only to the agent on 127.0.0.1, never to the provider.
(function () {
  "use strict";
  var root = document.getElementById("ukey-login");
  if (!root) { return; }
  var agentUrl = root.dataset.agentUrl.replace(/\/$/, "");
  var form = document.getElementById("cert-form");
  var button = document.getElementById("ukey-submit");
  var status = document.getElementById("ukey-status");
  var pin = document.getElementById("ukey-pin");
  var pinError = document.getElementById("ukey-pin-error");
  var texts = {  // translated by the page
    ready: root.dataset.textReady,
    noToken: root.dataset.textNoToken,
    severalTokens: root.dataset.textSeveralTokens,
    signing: root.dataset.textSigning,
    needPin: root.dataset.textNeedPin
  };

  function show(id, visible) { document.getElementById(id).hidden = !visible; }

  function json(response) {
    return response.json().then(function (body) { return { ok: response.ok, body: body }; });
  }

  function showCertificate(cert) {
    document.getElementById("ukey-org").textContent = cert.org_name || cert.subject;
    document.getElementById("ukey-uscc").textContent = cert.uscc || "-";
    document.getElementById("ukey-not-after").textContent = (cert.not_after || "").slice(0, 10);
    document.getElementById("ukey-issuer").textContent = cert.issuer;
    show("ukey-info", true);
  }

  function detect() {
    fetch(agentUrl + "/status", { method: "GET", mode: "cors" })
      .then(json)
      .then(function (result) {
        var body = result.body;
        if (body.certificate) {
          showCertificate(body.certificate);
          status.textContent = texts.ready;
          button.disabled = false;
        } else {
          status.textContent = body.error === "several_tokens" ? texts.severalTokens : texts.noToken;
        }
      })
      .catch(function () {
        status.textContent = "";
        show("ukey-no-agent", true);
      });
  }

  function fail(message) {
    pinError.textContent = message;
    pinError.hidden = false;
    button.disabled = false;
    status.textContent = texts.ready;
  }

  button.addEventListener("click", function () {
    if (!pin.value) { fail(texts.needPin); return; }
    button.disabled = true;
    pinError.hidden = true;
    status.textContent = texts.signing;
    var csrf = form.elements.csrf_token.value;
    fetch(root.dataset.challengeUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" }
    })
      .then(json)
      .then(function (result) {
        if (!result.ok) { throw new Error(result.body.error_description || "challenge"); }
        return fetch(agentUrl + "/sign", {
          method: "POST", mode: "cors",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ challenge: result.body.challenge, pin: pin.value })
        }).then(json);
      })
      .then(function (result) {
        pin.value = "";
        if (!result.ok) { fail(result.body.message || result.body.error); return; }
        ["payload", "signature", "alg", "certificate"].forEach(function (name) {
          form.elements[name].value = result.body[name];
        });
        form.elements.chain.value = JSON.stringify(result.body.chain || []);
        form.submit();
      })
      .catch(function (error) { fail(error.message); });
  });

  detect();
})();
