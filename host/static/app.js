// Progressive enhancement, nothing more: every page works without this script.
// Forms marked data-swap are sent in the background and replaced by the fragment
// the server answers (one-click status changes keep the scroll position and focus).
"use strict";
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-swap")) return;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form));
  if (event.submitter && event.submitter.name) body.set(event.submitter.name, event.submitter.value);
  form.classList.add("busy");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { "x-crm-fragment": "1" },
      credentials: "same-origin",
    });
    if (!response.ok) {
      // Let the server's error page speak (it says why, in the user's language).
      document.open();
      document.write(await response.text());
      document.close();
      return;
    }
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    const fresh = holder.firstElementChild;
    if (fresh) {
      form.replaceWith(fresh);
      const pressed = fresh.querySelector("[aria-pressed=true]");
      if (pressed) pressed.focus();
    }
  } finally {
    form.classList.remove("busy");
  }
});

// Boards: a card dragged onto another column submits its own move form (the same
// form a keyboard or script-less user submits with the select and its button).
let dragged = null;
document.addEventListener("dragstart", (event) => {
  dragged = event.target instanceof Element ? event.target.closest(".board-card") : null;
});
document.addEventListener("dragover", (event) => {
  const column = event.target instanceof Element ? event.target.closest("[data-column]") : null;
  if (dragged && column) {
    event.preventDefault();
    column.classList.add("drop");
  }
});
document.addEventListener("dragleave", (event) => {
  const column = event.target instanceof Element ? event.target.closest("[data-column]") : null;
  if (column) column.classList.remove("drop");
});
document.addEventListener("drop", (event) => {
  const column = event.target instanceof Element ? event.target.closest("[data-column]") : null;
  const form = dragged && dragged.querySelector("form.move");
  dragged = null;
  if (!column || !form) return;
  event.preventDefault();
  const select = form.querySelector("select[name=value]");
  if (select.value === column.dataset.column) return;
  select.value = column.dataset.column;
  form.requestSubmit();
});

// Uploads marked data-progress: sent in the background so a progress bar can
// follow the bytes; the browser then goes where the server sent it.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-progress")) return;
  event.preventDefault();
  const bar = form.querySelector("progress");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.upload.addEventListener("progress", (e) => {
    if (bar && e.lengthComputable) {
      bar.hidden = false;
      bar.value = Math.round((e.loaded / e.total) * 100);
    }
  });
  xhr.addEventListener("load", () => {
    if (xhr.status < 400 && xhr.responseURL) {
      window.location.assign(xhr.responseURL);
    } else {
      document.open();
      document.write(xhr.responseText);
      document.close();
    }
  });
  xhr.send(new FormData(form));
});

// Reference selects hold the first 200 records: a search box before each one asks
// the server for the records matching what is typed (as the list's quick search)
// and offers them, keeping the chosen one.
for (const select of document.querySelectorAll("select[data-search]")) {
  const box = document.createElement("input");
  box.type = "search";
  box.className = "reference-search";
  box.setAttribute("aria-label", (select.labels[0]?.textContent || "").trim() + " 🔍");
  box.setAttribute("aria-controls", select.id);
  select.before(box);
  let timer;
  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = select.dataset.search + "?q=" + encodeURIComponent(box.value);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const chosen = select.selectedOptions[0];
      const holder = document.createElement("select");
      holder.innerHTML = await response.text();
      const keep = [...select.options].filter((o) => o.value === "" || o === chosen);
      select.replaceChildren(...keep, ...[...holder.options].filter((o) => !chosen || o.value !== chosen.value));
    }, 250);
  });
}
