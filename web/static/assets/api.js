// Calling the rdsgate API from the page, signed or not.
//
// console-config.json says how (written by `rdsgate serve`, or by the CDK stack into the bucket):
//   {"auth": "none"}                               rdsgate serve: same origin, unsigned
//   {"auth": "sigv4", "region"}                    rdsgate serve --auth sigv4: credentials pasted by the user
//   {"auth": "cognito", "apiUrl", "region", "userPoolId", "userPoolClientId", "cognitoDomain", "identityPoolId"}
// With Cognito the hosted UI signs the user in (authorization code + PKCE), the identity pool turns the ID
// token into temporary credentials of the role mapped to the user's group, and every API call is signed
// with SigV4 for execute-api, so the API's methods stay AWS_IAM.

const SIGNER = "./vendor/sigv4.js";
const CREDENTIALS_KEY = "rdsgate.console.credentials"; // sessionStorage: gone when the tab closes
const TOKENS_KEY = "rdsgate.console.tokens";
const PKCE_KEY = "rdsgate.console.pkce";

export async function loadConfig() {
  const response = await fetch("console-config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`console-config.json: HTTP ${response.status}`);
  return response.json();
}

/** The API: get/post return {ok, status, data}; data is the parsed JSON body (or an error document). */
export class Api {
  constructor(config) {
    this.config = config;
    this.base = (config.apiUrl || "").replace(/\/+$/, "");
    this.auth = config.auth === "cognito" ? new CognitoAuth(config)
      : config.auth === "sigv4" ? new PastedCredentials(config) : null;
    this._client = null;
    this._clientFor = null;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  async request(method, path, body) {
    const url = `${this.base}${path}`;
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      if (this.auth) {
        const client = await this._signer();
        response = await client.fetch(new URL(url, location.href).href, init);
      } else {
        response = await fetch(url, init);
      }
    } catch (error) {
      const code = error instanceof AuthRequired ? "SignInRequired" : error instanceof AuthFailed ? "SignInFailed"
        : "NetworkError";
      return { ok: false, status: 0, data: { error: { code, message: error.message } } };
    }
    const text = await response.text();
    let data;
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = { error: { code: `HTTP ${response.status}`, message: text.slice(0, 500) } };
    }
    if (!response.ok && !data.error) {
      // API Gateway's own answers (a refused signature, throttling) are {"message": …}.
      data = { error: { code: gatewayCode(response.status), message: data.message || data.Message || response.statusText } };
    }
    return { ok: response.ok, status: response.status, data };
  }

  /** An aws4fetch client for the current credentials (the bundle is loaded on first use). */
  async _signer() {
    const credentials = await this.auth.credentials();
    if (this._client && this._clientFor === credentials) return this._client;
    const { AwsClient } = await import(SIGNER);
    this._client = new AwsClient({
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken || undefined,
      service: "execute-api",
      region: this.config.region,
      retries: 0,
    });
    this._clientFor = credentials;
    return this._client;
  }
}

function gatewayCode(status) {
  return { 403: "AccessDenied", 429: "Throttled", 502: "BadGateway", 504: "GatewayTimeout" }[status] || `HTTP ${status}`;
}

/** No credentials yet: the user must sign in (or paste credentials). */
export class AuthRequired extends Error {}

/** Cognito refused to hand out credentials (e.g. the user is in no console group). */
export class AuthFailed extends Error {}

/** `rdsgate serve --auth sigv4`: the user pastes the credentials file the stack printed. */
export class PastedCredentials {
  constructor(config) {
    this.config = config;
  }

  get signedIn() {
    return Boolean(sessionStorage.getItem(CREDENTIALS_KEY));
  }

  describe() {
    const stored = this._stored();
    return stored ? `signing as ${stored.accessKeyId.slice(0, 8)}…` : "no credentials";
  }

  async credentials() {
    const stored = this._stored();
    if (!stored) throw new AuthRequired("paste credentials first (Credentials button)");
    return stored;
  }

  _stored() {
    const text = sessionStorage.getItem(CREDENTIALS_KEY);
    if (!text) return null;
    this._cache = this._cache?.text === text ? this._cache : { text, value: JSON.parse(text) };
    return this._cache.value;
  }

  /** Accepts a credentials file profile, `export AWS_…=` lines, or a JSON document with the three keys. */
  save(text) {
    const found = parseCredentials(text);
    if (!found.accessKeyId || !found.secretAccessKey) {
      throw new Error("expected aws_access_key_id and aws_secret_access_key (and aws_session_token)");
    }
    sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(found));
  }

  signOut() {
    sessionStorage.removeItem(CREDENTIALS_KEY);
  }
}

export function parseCredentials(text) {
  const names = {
    aws_access_key_id: "accessKeyId", accesskeyid: "accessKeyId",
    aws_secret_access_key: "secretAccessKey", secretaccesskey: "secretAccessKey", secretkey: "secretAccessKey",
    aws_session_token: "sessionToken", sessiontoken: "sessionToken",
  };
  const found = {};
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const document = JSON.parse(trimmed);
    const source = document.Credentials || document;
    for (const [key, value] of Object.entries(source)) {
      const name = names[key.toLowerCase()];
      if (name) found[name] = String(value);
    }
    return found;
  }
  for (const line of trimmed.split(/\r?\n/)) {
    const match = line.match(/^\s*(?:export\s+)?([A-Za-z_]+)\s*[=:]\s*"?([^"\s]+)"?\s*$/);
    const name = match && names[match[1].toLowerCase()];
    if (name) found[name] = match[2];
  }
  return found;
}

/** The deployed console: Cognito hosted UI, then identity-pool credentials for the user's group role. */
export class CognitoAuth {
  constructor(config) {
    this.config = config;
    this.redirectUri = config.redirectUri || `${location.origin}${location.pathname}`;
  }

  get signedIn() {
    return Boolean(this._tokens()?.idToken);
  }

  describe() {
    const claims = this.claims();
    if (!claims) return "signed out";
    const groups = claims["cognito:groups"] || [];
    return `${claims.email || claims["cognito:username"] || claims.sub}${groups.length ? ` (${groups.join(", ")})` : ""}`;
  }

  claims() {
    const token = this._tokens()?.idToken;
    if (!token) return null;
    try {
      return JSON.parse(new TextDecoder().decode(base64UrlDecode(token.split(".")[1])));
    } catch {
      return null;
    }
  }

  /** Finish a sign-in when the hosted UI sent the browser back with ?code=…; true if one was finished. */
  async completeSignIn() {
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    if (!code) return false;
    const pkce = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, "", location.pathname);
    if (!pkce || pkce.state !== params.get("state")) throw new Error("sign-in answer does not match this tab's request");
    const tokens = await this._token({
      grant_type: "authorization_code", code, redirect_uri: this.redirectUri, code_verifier: pkce.verifier,
    });
    this._saveTokens(tokens);
    return true;
  }

  async signIn() {
    const verifier = randomText(48);
    const state = randomText(16);
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
    const challenge = base64UrlEncode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const query = new URLSearchParams({
      response_type: "code", client_id: this.config.userPoolClientId, redirect_uri: this.redirectUri,
      scope: "openid email profile", state, code_challenge: challenge, code_challenge_method: "S256",
    });
    location.assign(`${this.config.cognitoDomain}/oauth2/authorize?${query}`);
  }

  signOut() {
    sessionStorage.removeItem(TOKENS_KEY);
    sessionStorage.removeItem(CREDENTIALS_KEY);
    const query = new URLSearchParams({ client_id: this.config.userPoolClientId, logout_uri: this.redirectUri });
    location.assign(`${this.config.cognitoDomain}/logout?${query}`);
  }

  /** Temporary credentials, refreshed five minutes before they expire. */
  async credentials() {
    const cached = JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) || "null");
    if (cached && cached.expiration - Date.now() > 5 * 60_000) return this._same(cached);
    let tokens = this._tokens();
    if (!tokens?.idToken) throw new AuthRequired("sign in first");
    if (tokens.expiresAt - Date.now() < 60_000) {
      if (!tokens.refreshToken) throw new AuthRequired("the session expired: sign in again");
      const refreshed = await this._token({ grant_type: "refresh_token", refresh_token: tokens.refreshToken });
      tokens = this._saveTokens({ ...refreshed, refresh_token: refreshed.refresh_token || tokens.refreshToken });
    }
    const logins = { [`cognito-idp.${this.config.region}.amazonaws.com/${this.config.userPoolId}`]: tokens.idToken };
    const { IdentityId } = await this._identity("GetId", { IdentityPoolId: this.config.identityPoolId, Logins: logins });
    const { Credentials } = await this._identity("GetCredentialsForIdentity", { IdentityId, Logins: logins });
    const credentials = {
      accessKeyId: Credentials.AccessKeyId, secretAccessKey: Credentials.SecretKey,
      sessionToken: Credentials.SessionToken, expiration: Credentials.Expiration * 1000,
    };
    sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));
    return this._same(credentials);
  }

  // The same object while the stored credentials do not change, so the signer is built once.
  _same(credentials) {
    if (this._last?.accessKeyId !== credentials.accessKeyId || this._last?.expiration !== credentials.expiration) {
      this._last = credentials;
    }
    return this._last;
  }

  async _identity(operation, body) {
    const response = await fetch(`https://cognito-identity.${this.config.region}.amazonaws.com/`, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityService.${operation}` },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) {
      if (/NotAuthorized/.test(data.__type || "")) sessionStorage.removeItem(TOKENS_KEY);
      throw new AuthFailed(`Cognito ${operation}: ${data.message || data.__type || response.status}`);
    }
    return data;
  }

  async _token(form) {
    const response = await fetch(`${this.config.cognitoDomain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: this.config.userPoolClientId, ...form }),
    });
    const data = await response.json();
    if (!response.ok) {
      sessionStorage.removeItem(TOKENS_KEY);
      throw new AuthRequired(`sign-in failed: ${data.error || response.status}`);
    }
    return data;
  }

  _tokens() {
    return JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null");
  }

  _saveTokens(data) {
    const tokens = {
      idToken: data.id_token, refreshToken: data.refresh_token, expiresAt: Date.now() + (data.expires_in || 3600) * 1000,
    };
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    sessionStorage.removeItem(CREDENTIALS_KEY);
    return tokens;
  }
}

function randomText(bytes) {
  return base64UrlEncode(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64UrlEncode(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64UrlDecode(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "="));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
