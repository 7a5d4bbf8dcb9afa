// discord-connector console: progressive enhancement only; every page works without it.
// Copy buttons: a button with data-copy="<selector>" copies that input's value.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const target = document.querySelector(button.dataset.copy);
    if (!target || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(target.value || target.textContent);
        button.textContent = "Copied";
      } catch (_) {
        target.select();
        button.textContent = "Press Ctrl+C to copy";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
});
