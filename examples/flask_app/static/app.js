// "Resend" becomes clickable when its cooldown is over; the server checks again anyway.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-wait]")) {
    const label = document.querySelector(`.countdown[data-for="${button.id}"]`);
    const until = Date.now() + Number(button.dataset.wait) * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        button.disabled = false;
        if (label) label.textContent = "";
        return;
      }
      button.disabled = true;
      if (label) label.textContent = `available in ${left} s`;
      setTimeout(tick, 250);
    };
    tick();
  }
});
