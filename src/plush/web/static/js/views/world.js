// The world view (a stub: its helper replaces it). mount(el, store, params) -> {unmount()}.

export function mount(el, store, params) {
  const title = document.createElement("h1");
  title.textContent = "World";
  const body = document.createElement("p");
  body.className = "muted";
  body.textContent = "loading";
  el.append(title, body);
  return { unmount() {} };
}
