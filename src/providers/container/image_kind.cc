// container.image: a reference (`ref`) that names the image loaded from a tarball of the
// repository (`source`) through /images/load. The image id is the digest of the image's
// configuration, computed from the tarball by Normalize: the same tarball gives the same id at
// every load, so a plan knows it, and a ref that names another image by now is drift.

#include "base/strings.h"
#include "providers/container/container_target.h"
#include "providers/container/image_archive.h"

namespace driftless::providers::container {

using value::Value;

namespace {

std::string ImagePath(const std::string& ref) {
  return std::string(kApi) + "/images/" + UrlEncode(ref) + "/json";
}

std::string ShortId(const std::string& id) {
  return (StartsWith(id, "sha256:") ? id.substr(7) : id).substr(0, 12);
}

// "localhost/app:1.4" -> {"localhost/app", "1.4"}.
std::pair<std::string, std::string> RepoTag(const std::string& ref) {
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return {ref, "latest"};
  }
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

Value Live(const Object& o, const Value& inspect) {
  Value out = Value::MakeObject();
  const std::string id = Str(inspect, "Id");
  out.Set("ref", Value::String(SpecString(o.spec, "ref")));
  const std::string source = SpecString(o.spec, "source");
  if (!source.empty()) {
    const std::string want = SpecString(o.spec, "id");
    out.Set("source", Value::String(id == want ? source
                                               : "(image " + ShortId(id) + ", not the one " +
                                                     source + " holds)"));
  }
  out.Set("id", Value::String(id));
  return out;
}

Result<std::optional<Value>> Read(const ContainerTarget& t, const Object& o) {
  Result<Value> got = t.client().Json("GET", ImagePath(SpecString(o.spec, "ref")), {}, true);
  if (!got.ok()) return got.error();
  if (got->is_null()) return std::optional<Value>();
  return std::optional<Value>(Live(o, *got));
}

// Loads the source and makes `ref` name it.
Status Load(ContainerTarget& t, const Object& o) {
  const std::string ref = SpecString(o.spec, "ref");
  const std::string id = SpecString(o.spec, "id");
  const std::string source = SpecString(o.spec, "source");
  if (source.empty()) {
    return MakeError("image " + Quote(ref) +
                     " is not on the engine and has no `source` to load it from");
  }
  std::optional<std::string> bytes = t.SourceBytes(id);
  if (!bytes)
    return MakeError("internal error: the source of image " + Quote(ref) + " was not read");
  Result<ImageArchive> archive = InspectArchive(*bytes, ref);
  if (!archive.ok()) return MakeError(source + ": " + archive.error().message);
  std::string body =
      archive->kind == ArchiveKind::kRootfs ? RootfsArchive(*bytes, ref) : std::move(*bytes);
  bytes.reset();
  // Docker streams progress lines, an error among them; Podman answers one object.
  auto failed = [](const HttpResponse& r) {
    return r.status < 200 || r.status >= 300 || r.body.find("\"errorDetail\"") != std::string::npos;
  };
  Result<HttpResponse> r = t.client().Call("POST", std::string(kApi) + "/images/load", body,
                                           "application/x-tar", 600000);
  if (r.ok() && failed(*r)) {
    // Podman's load is not atomic against the removal of the same image (the same content
    // under another ref, whose last name another environment just removed): it fails with
    // "saving metadata for image ...: identifier is not a layer, image, or container". A load
    // changes nothing else, so it is tried once more; a second failure is reported.
    r = t.client().Call("POST", std::string(kApi) + "/images/load", body, "application/x-tar",
                        600000);
  }
  if (!r.ok()) return r.error();
  if (failed(*r)) {
    return MakeError("loading " + source + " as " + Quote(ref) + ": " + EngineMessage(r->body));
  }
  // An archive saved under another name: its image is tagged with the ref.
  Result<Value> now = t.client().Json("GET", ImagePath(ref), {}, true);
  if (!now.ok()) return now.error();
  if (now->is_null() || Str(*now, "Id") != id) {
    auto [repo, tag] = RepoTag(ref);
    Result<Value> tagged =
        t.client().Json("POST", std::string(kApi) + "/images/" + UrlEncode(id) +
                                    "/tag?repo=" + UrlEncode(repo) + "&tag=" + UrlEncode(tag));
    if (!tagged.ok()) return tagged.error();
  }
  return Status::Ok();
}

// Removes the image `id` when no name is left on it and no container uses it (the engine
// refuses then); an image that another ref names stays.
void RemoveIfUnused(ContainerTarget& t, const std::string& id) {
  if (id.empty()) return;
  Result<Value> image =
      t.client().Json("GET", std::string(kApi) + "/images/" + UrlEncode(id) + "/json", {}, true);
  if (!image.ok() || image->is_null()) return;
  const Value* tags = image->Find("RepoTags");
  if (tags != nullptr && tags->is_list() && !tags->as_list().empty()) return;
  (void)t.client().Call("DELETE", std::string(kApi) + "/images/" + UrlEncode(id));
}

Result<Value> ReadBack(ContainerTarget& t, const Object& o) {
  Result<std::optional<Value>> after = Read(t, o);
  if (!after.ok()) return after.error();
  if (!*after)
    return MakeError("image " + Quote(SpecString(o.spec, "ref")) + " is missing after its load");
  return std::move(**after);
}

Result<Value> Create(ContainerTarget& t, const Object& o, bool adopt) {
  Result<Value> existing = t.client().Json("GET", ImagePath(SpecString(o.spec, "ref")), {}, true);
  if (!existing.ok()) return existing.error();
  const std::string want = SpecString(o.spec, "id");
  if (!existing->is_null()) {
    // The same content under the same name: loading again would change nothing.
    // Without a source the resource only names an image that exists already.
    if (Str(*existing, "Id") == want || want.empty()) return Live(o, *existing);
    if (!adopt) {
      return MakeError("image " + Quote(SpecString(o.spec, "ref")) +
                       " already exists (another image: " + ShortId(Str(*existing, "Id")) +
                       "); set policy.adopt: true to take the name over");
    }
  }
  Status s = Load(t, o);
  if (!s.ok()) return s.error();
  return ReadBack(t, o);
}

Result<Value> Update(ContainerTarget& t, const Object& o, const Value& prior) {
  Result<Value> existing = t.client().Json("GET", ImagePath(SpecString(o.spec, "ref")), {}, true);
  if (!existing.ok()) return existing.error();
  const std::string want = SpecString(o.spec, "id");
  const std::string before = existing->is_null() ? "" : Str(*existing, "Id");
  if (before != want || want.empty()) {
    Status s = Load(t, o);
    if (!s.ok()) return s.error();
    // The image the ref named until now, unless something still uses it.
    if (!before.empty() && before != want) RemoveIfUnused(t, before);
    const std::string recorded = SpecString(prior, "id");
    if (!recorded.empty() && recorded != want && recorded != before) RemoveIfUnused(t, recorded);
  }
  return ReadBack(t, o);
}

Status Delete(ContainerTarget& t, const Object& o) {
  const std::string ref = SpecString(o.spec, "ref");
  if (SpecString(o.spec, "source").empty()) return Status::Ok();  // not loaded by driftless
  Result<Value> existing = t.client().Json("GET", ImagePath(ref), {}, true);
  if (!existing.ok()) return existing.error();
  if (existing->is_null()) return Status::Ok();
  const std::string recorded = SpecString(o.spec, "id");
  if (!recorded.empty() && Str(*existing, "Id") != recorded) {
    return Status::Ok();  // the name was given to another image since: not driftless's
  }
  Result<HttpResponse> r =
      t.client().Call("DELETE", std::string(kApi) + "/images/" + UrlEncode(ref));
  if (!r.ok()) return r.error();
  if (r->status == 200 || r->status == 404) return Status::Ok();
  if (r->status == 409) {
    // Used by a container: only the name goes (Podman's untag; Docker's force untags without
    // touching containers, Podman's force would remove them).
    auto [repo, tag] = RepoTag(ref);
    Result<Value> untag =
        t.Traits().podman
            ? t.client().Json("POST", std::string(kLibpod) + "/images/" + UrlEncode(ref) +
                                          "/untag?repo=" + UrlEncode(repo) +
                                          "&tag=" + UrlEncode(tag))
            : t.client().Json("DELETE",
                              std::string(kApi) + "/images/" + UrlEncode(ref) + "?force=true");
    if (!untag.ok()) return untag.error();
    return Status::Ok();
  }
  return MakeError("removing image " + Quote(ref) + ": " + std::to_string(r->status) + " " +
                   EngineMessage(r->body));
}

}  // namespace

KindOps ImageOps() { return {Read, Create, Update, Delete}; }

}  // namespace driftless::providers::container
