// Shows only the input that the chosen sign-in method needs. Without JavaScript both
// inputs stay visible and the server uses the one matching the method.
document.addEventListener("DOMContentLoaded", () => {
  const radios = document.querySelectorAll('input[name="method"]');
  const fields = document.querySelectorAll(".field[data-for]");
  if (radios.length === 0) return;
  const update = () => {
    const chosen = document.querySelector('input[name="method"]:checked');
    if (!chosen) return;
    fields.forEach((field) => {
      field.hidden = !field.dataset.for.split(" ").includes(chosen.value);
    });
  };
  radios.forEach((radio) => radio.addEventListener("change", update));
  update();
});
