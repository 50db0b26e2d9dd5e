// Keyward console: the only script, served from /ui/static/. It enables a destructive action's
// button once its confirmation field holds exactly what the field asks for. The server checks
// the confirmation again; this only saves a round trip.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-confirm]")) {
    const button = input.form && input.form.querySelector("[data-needs-confirm]");
    if (!button) continue;
    const update = () => { button.disabled = input.value.trim() !== input.dataset.confirm; };
    input.addEventListener("input", update);
    update();
  }
});
