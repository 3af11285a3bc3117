// 客户端工具 page: ask the local UKey agent for its status and say whether it runs. The agent
// answers only the origins stamped into it, so "running" also means "downloaded from here".
(function () {
  "use strict";
  var root = document.getElementById("ukey-agent-page");
  if (!root) { return; }
  var status = document.getElementById("agent-status");
  var agentUrl = root.dataset.agentUrl.replace(/\/$/, "");

  function say(text, running) {
    status.textContent = text;
    status.classList.toggle("running", running);
    status.classList.toggle("stopped", !running);
  }

  fetch(agentUrl + "/status", { method: "GET", mode: "cors" })
    .then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    })
    .then(function (body) {
      var text = root.dataset.textRunning + " · ";
      if (body.certificate) {
        text += root.dataset.textToken + " " + (body.certificate.org_name || body.certificate.subject);
      } else {
        text += root.dataset.textNoToken;
      }
      say(text, true);
    })
    .catch(function () { say(root.dataset.textStopped, false); });
})();
