// Passkeys with Authsignal's browser SDK (vendor/authsignal-browser-1.16.0.min.js). The
// browser talks to Authsignal's Client API; what it brings back is a token, which the
// server validates with Authsignal before it trusts anything. Without JavaScript the
// passkey sections stay hidden and the one-time codes work as before.
document.addEventListener("DOMContentLoaded", () => {
  const body = document.body;
  if (!body.dataset.authsignalTenant || !window.authsignal || !window.PublicKeyCredential) return;
  const client = new window.authsignal.Authsignal({
    tenantId: body.dataset.authsignalTenant,
    baseUrl: body.dataset.authsignalUrl,
  });

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
