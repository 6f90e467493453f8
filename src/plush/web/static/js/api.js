// The web UI's one way to call the HTTP API: same origin, the sign-in cookie, the X-Plush-Client header
// (the server refuses a cookie request that changes anything without it), JSON in and out.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// api(method, path, body?) -> Promise<json>; throws ApiError {status, code, message} (the API's own words).
export async function api(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { "X-Plush-Client": "web", Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", "the controller does not answer (is plush serve still running?)");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      data = text;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" && data.error ? data.error : null;
    if (response.status === 401) {
      signedOut();
    }
    throw new ApiError(
      response.status,
      error ? error.code : "http_" + response.status,
      error ? error.message : `${method} ${path}: HTTP ${response.status}`,
    );
  }
  return data;
}

// The text of a file of the API (a run's log): same rules, the body as text.
export async function apiText(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store",
    headers: { "X-Plush-Client": "web" } });
  if (!response.ok) {
    let message = `${path}: HTTP ${response.status}`;
    try {
      const data = await response.json();
      if (data && data.error) message = data.error.message;
    } catch (err) { /* not JSON */ }
    throw new ApiError(response.status, "http_" + response.status, message);
  }
  return response.text();
}

let leaving = false;
// The cookie is no longer good (the token changed, signed out elsewhere): to the login page, once.
export function signedOut() {
  if (!leaving) {
    leaving = true;
    window.location.assign("/login");
  }
}
