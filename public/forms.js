// Busy forms: once a form is sent, its buttons wait (the theme dims them) and the pressed one
// says what is happening (its data-busy text), and pressing again sends nothing, so a double
// click is one request. A form that a script sends itself (its handler calls preventDefault)
// is left to that script. Without JavaScript forms work as before.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented) return;
  if (form.getAttribute("aria-busy") === "true") {
    event.preventDefault();
    return;
  }
  form.setAttribute("aria-busy", "true");
  const button = event.submitter;
  if (button && button.dataset.busy) {
    button.dataset.idle = button.textContent;
    button.textContent = button.dataset.busy;
  }
});

// A page shown again from the history (Back) has idle forms.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll('form[aria-busy="true"]').forEach((form) => {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[data-idle]").forEach((button) => {
      button.textContent = button.dataset.idle;
      delete button.dataset.idle;
    });
  });
});
