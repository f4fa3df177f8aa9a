// The pre-built UI's script. It signs in with the user's passkey through this emulator's
// Client API (as Authsignal's hosted page does through the real one) and, in popup mode,
// talks to Authsignal's browser SDK in the app's window: AUTHSIGNAL_READY once loaded, the
// page's height as it changes (a raw {height} object), AUTHSIGNAL_CLOSE_POPUP with the
// token at the end, AUTHSIGNAL_API_ERROR on an error page. Messages go only to the client
// origins the emulator was started with.
(() => {
  const root = document.querySelector("[data-prebuilt]");
  if (!root) return;
  const popup = root.dataset.mode === "popup";
  const origins = JSON.parse(root.dataset.origins || "[]");
  const target = window.opener || (window.parent !== window ? window.parent : null);
  const post = (message) => {
    if (!popup || !target) return;
    for (const origin of origins) {
      try {
        target.postMessage(message, origin);
      } catch (_) {
        // not this origin
      }
    }
  };

  if (popup) {
    post(JSON.stringify({ event: "AUTHSIGNAL_READY" }));
    const resize = () => post({ height: document.documentElement.scrollHeight });
    resize();
    if (window.ResizeObserver) new ResizeObserver(resize).observe(document.body);
    const finish = document.querySelector("[data-finish-token]");
    if (finish) post(JSON.stringify({ event: "AUTHSIGNAL_CLOSE_POPUP", token: finish.dataset.finishToken }));
    const failed = document.querySelector("[data-api-error]");
    if (failed) post(JSON.stringify({ event: "AUTHSIGNAL_API_ERROR", errorCode: failed.dataset.apiError, statusCode: Number(failed.dataset.httpStatus) }));
  }

  const button = document.querySelector("[data-passkey-button]");
  if (!button || !window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) return;
  const status = document.querySelector("[data-passkey-status]");
  const token = root.dataset.token;
  const call = async (path, body) => {
    const resp = await fetch("/v1/client/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body),
    });
    const json = await resp.json();
    if (json.error) throw new Error(json.errorDescription || json.error);
    return json;
  };
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "";
    try {
      const { challengeId, options } = await call("user-authenticators/passkey/authentication-options", {});
      const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      const verified = await call("verify/passkey", { challengeId, authenticationCredential: credential.toJSON() });
      location.assign("/challenge/done?token=" + encodeURIComponent(verified.accessToken) + (popup ? "&mode=popup" : ""));
      return;
    } catch (err) {
      status.textContent = err && err.name === "NotAllowedError" ? "No passkey was used. Try again, or use a code." : "The passkey did not work: " + err.message;
    }
    button.disabled = false;
  });
})();
