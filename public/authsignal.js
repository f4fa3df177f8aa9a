// The app's use of Authsignal's browser SDK (vendor/authsignal-browser-1.16.0.min.js):
// passkeys, and the withdrawal's step-up in a popup. The browser talks to Authsignal;
// what it brings back is a token, which the server validates with Authsignal before it
// trusts anything. Without JavaScript the passkey sections stay hidden, the one-time
// codes work as before and the step-up is a redirect.
document.addEventListener("DOMContentLoaded", () => {
  const body = document.body;
  if (!body.dataset.authsignalTenant || !window.authsignal) return;
  const client = new window.authsignal.Authsignal({
    tenantId: body.dataset.authsignalTenant,
    baseUrl: body.dataset.authsignalUrl,
  });

  // The step-up in a popup: the form is posted as usual, with stepup=popup; a challenge
  // answers the pre-built UI's address, opened over the page, and its token goes to the
  // same callback the redirect would reach.
  const withdraw = document.querySelector("form[data-stepup-popup]");
  if (withdraw) {
    withdraw.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = withdraw.querySelector('button[type="submit"]');
      button.disabled = true; // busy, as forms.js shows other forms
      withdraw.setAttribute("aria-busy", "true");
      if (button.dataset.busy) button.textContent = button.dataset.busy;
      try {
        const data = new FormData(withdraw);
        data.set("stepup", "popup");
        const resp = await fetch(withdraw.action, { method: "POST", body: new URLSearchParams(data), headers: { Accept: "application/json" } });
        if (!(resp.headers.get("Content-Type") || "").startsWith("application/json")) {
          // A page: the one redirected to, or (a form error) the same post again, which
          // the withdrawal's id makes the same withdrawal.
          if (resp.redirected) location.assign(resp.url);
          else withdraw.submit();
          return;
        }
        const { challengeUrl } = await resp.json();
        const { token } = await client.launch(challengeUrl, { mode: "popup" });
        // Closed without finishing (Esc, or a click beside it): the withdrawal waits, and
        // the account page offers to cancel it.
        location.assign(token ? "/withdrawals/callback?token=" + encodeURIComponent(token) : "/account");
      } catch (err) {
        withdraw.submit(); // the redirect, as without JavaScript
      }
    });
  }

  // An authenticator app: a token to add it, the key to type into the app, its first code.
  const app = document.querySelector("[data-app-add]");
  if (app) {
    app.hidden = false;
    const status = app.querySelector("[data-app-status]");
    const form = app.querySelector("[data-app-form]");
    app.querySelector("[data-app-start]").addEventListener("click", async (event) => {
      event.target.disabled = true;
      status.textContent = "";
      try {
        const csrf = form.querySelector('input[name="_csrf"]').value;
        const resp = await fetch("/authenticator-app/token", { method: "POST", headers: { "X-CSRF-Token": csrf } });
        const started = await resp.json();
        if (!resp.ok) throw new Error(started.error);
        client.setToken(started.token);
        const res = await client.totp.enroll();
        if (!res || !res.data) throw new Error((res && res.error) || "the sign-in service refused");
        app.querySelector("[data-app-secret]").textContent = res.data.secret;
        app.querySelector("[data-app-uri]").href = res.data.uri;
        app.querySelector("[data-app-enrol]").hidden = false;
        app.querySelector("#app-code").focus();
      } catch (err) {
        status.textContent = "No authenticator app was added: " + err.message + ".";
        event.target.disabled = false;
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      const res = await client.totp.verify({ code: app.querySelector("#app-code").value.trim() });
      if (res && res.data && res.data.isVerified && res.data.token) {
        form.querySelector('input[name="token"]').value = res.data.token;
        form.submit();
        return;
      }
      status.textContent = "That code didn't work. Check the key in your app and try the newest code.";
    });
  }

  if (!window.PublicKeyCredential) return;

  // finish posts the SDK's token to the section's form: the server answers with a page.
  const finish = (section, token) => {
    const form = section.querySelector("[data-passkey-form]");
    form.querySelector('input[name="token"]').value = token;
    form.submit();
  };
  const say = (section, text) => {
    section.querySelector("[data-passkey-status]").textContent = text;
  };
  // A person closing the browser's passkey dialog is not an error worth a sentence.
  const cancelled = (err) => err && (err.name === "NotAllowedError" || err.name === "AbortError");

  const signIn = document.querySelector("[data-passkey-signin]");
  if (signIn) {
    signIn.hidden = false;
    const run = async (autofill) => {
      try {
        const res = await client.passkey.signIn({ action: "signInWithPasskey", autofill });
        if (res && res.data && res.data.token) {
          finish(signIn, res.data.token);
        } else if (!autofill) {
          say(signIn, "No passkey was used. Try again, or sign in with a code.");
        }
      } catch (err) {
        // Autofill ends quietly (the person typed instead, or a button press took over).
        if (!autofill) say(signIn, cancelled(err) ? "No passkey was used. Try again, or sign in with a code." : "Your browser could not use a passkey here. Sign in with a code.");
      }
    };
    signIn.querySelector("[data-passkey-signin-button]").addEventListener("click", () => run(false));
    // Autofill: the email field offers the passkeys saved for this site.
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => ok && run(true));
    }
  }

  const add = document.querySelector("[data-passkey-add]");
  if (add) {
    add.hidden = false;
    const button = add.querySelector("[data-passkey-add-button]");
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(add, "");
      try {
        const csrf = add.querySelector('input[name="_csrf"]').value;
        const resp = await fetch("/passkeys/token", { method: "POST", headers: { "X-CSRF-Token": csrf } });
        const started = await resp.json();
        if (!resp.ok) throw new Error(started.error);
        const res = await client.passkey.signUp({ token: started.token, username: started.username });
        if (res && res.data && res.data.token) {
          finish(add, res.data.token);
          return;
        }
        say(add, "No passkey was added. Try again.");
      } catch (err) {
        say(add, cancelled(err) ? "" : "No passkey was added: " + (err.message || "your browser refused") + ".");
      }
      button.disabled = false;
    });
  }
});
