#pragma once

// The web UI's files as they are compiled into the binary: each file's bytes, its gzip form, its
// content type and its ETag, made at build time by generator/embed_ui.cc from the bundle that
// ui/build.mjs writes.

#include <span>
#include <string_view>

namespace driftless::server::ui {

/// One file of the UI.
struct Asset {
  std::string_view path;          ///< the URL path: "/index.html", "/assets/app-HASH.js"
  std::string_view content_type;  ///< "text/javascript; charset=utf-8"
  std::string_view body;          ///< the file's bytes
  std::string_view gzip;          ///< its gzip form; "" when gzip would not make it smaller
  std::string_view etag;          ///< a strong ETag of the bytes, quoted: "\"sha256-…\""
};

/// The files compiled into this binary (generated at build time); index.html among them.
std::span<const Asset> EmbeddedAssets();

}  // namespace driftless::server::ui
