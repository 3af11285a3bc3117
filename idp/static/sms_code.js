// "发送验证码" (login and join pages): posts the phone to the form's data-sms-url and shows a
// countdown. The form is the one that carries data-sms-url.
(function () {
  "use strict";
  var form = document.querySelector("form[data-sms-url]");
  var button = document.getElementById("send-sms");
  if (!form || !button) { return; }
  var status = document.getElementById("sms-status");

  function countdown(seconds) {
    button.disabled = true;
    var left = seconds;
    var tick = function () {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = button.dataset.label;
        return;
      }
      button.textContent = button.dataset.countdown.replace("{s}", String(left));
      left -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  button.addEventListener("click", function () {
    var body = new FormData();
    body.append("phone", form.elements.phone.value.trim());
    body.append("csrf_token", form.elements.csrf_token.value);
    button.disabled = true;
    fetch(form.dataset.smsUrl, {
      method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        status.textContent = result.ok ? result.data.message : result.data.error_description;
        status.className = result.ok ? "hint" : "field-error";
        if (result.ok || result.data.retry_after) {
          countdown(result.data.retry_after || 60);
        } else {
          button.disabled = false;
        }
      })
      .catch(function () {
        status.textContent = button.dataset.label;
        button.disabled = false;
      });
  });
})();
