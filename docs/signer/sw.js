// pane-agent signer: the service worker the agent serves at /signer/sw.js. It keeps the page,
// its manifest and icon so the signer opens offline after the first visit. Only same-origin
// GETs of those files are answered; everything else goes to the network untouched and is
// never stored: POST /command and POST /unseal (the unseal passphrase) above all, and the
// agent's live answers such as GET /healthz (whether it is sealed), which a cache would only
// make stale. Network first, so a newer page is picked up whenever the agent is reachable; the
// cache answers when it is not.
"use strict";
var CACHE = "pane-signer-v1";
var SCOPE = new URL("./", self.location.href).pathname;
var SHELL = ["./", "manifest.webmanifest", "icon.svg"];
var SHELL_PATHS = SHELL.map(function (p) { return new URL(p, self.location.href).pathname; });

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(SHELL);
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) {
      return caches.delete(k);
    }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.indexOf(SCOPE) !== 0) { return; }
  if (SHELL_PATHS.indexOf(url.pathname) < 0) { return; }
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.put(request, copy); }));
    }
    return response;
  }, function () {
    return caches.match(request, { ignoreSearch: true }).then(function (cached) {
      return cached || Response.error();
    });
  }));
});
