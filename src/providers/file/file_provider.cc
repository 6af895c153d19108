#include "providers/file/file_provider.h"

#include <utility>

#include "providers/file/file_target.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {
namespace {

using provider::FieldSchema;
using provider::FieldType;
using provider::ResourceSchema;

FieldSchema NameField() {
  return {.name = "name",
          .type = FieldType::kString,
          .description =
              "The object's name; defaults to the resource's name. Informational "
              "only for files: the object is identified by `path`.",
          .write_only = true};
}

FieldSchema PathField(std::string what) {
  return {.name = "path",
          .type = FieldType::kString,
          .required = true,
          .force_new = true,
          .description = "Where the " + what +
                         " is, relative to the target root (\"etc/app.conf\"). Absolute paths, "
                         "\"..\", \".\" and empty segments are refused; a symlink inside the "
                         "root is never followed on the way."};
}

FieldSchema ModeField(std::string default_mode) {
  return {.name = "mode",
          .type = FieldType::kString,
          .description =
              "Permission bits as an octal string (\"0644\"; \"644\" is the same), at "
              "most \"07777\". When absent, an existing object keeps its mode and a "
              "new one gets " +
              default_mode + "."};
}

FieldSchema OwnerField() {
  return {.name = "owner",
          .type = FieldType::kString,
          .description =
              "The owning user, by name or numeric id (an id that has a name is "
              "shown as the name). Left as it is when absent."};
}

FieldSchema GroupField() {
  return {.name = "group",
          .type = FieldType::kString,
          .description =
              "The owning group, by name or numeric id (an id that has a name is "
              "shown as the name). Left as it is when absent."};
}

FieldSchema ParentsCreatedField() {
  return {.name = kParentsCreatedField,
          .type = FieldType::kList,
          .computed = true,
          .description =
              "Folders on the way that the first write created (deepest first); "
              "deleting the object removes them again while they are empty."};
}

FieldSchema TypeField() {
  return {.name = "type",
          .type = FieldType::kString,
          .description =
              "What is at the path: \"file\", \"directory\", \"symlink\" or \"other\". "
              "Filled by the provider with the kind's own type and compared with what is "
              "there, so that something else at the path is drift. Need not be declared; "
              "declaring another type is an error."};
}

std::vector<ResourceSchema> BuildSchemas() {
  std::vector<ResourceSchema> out;
  out.push_back(ResourceSchema{
      .kind = kFileKind,
      .description = "A regular file beneath the target root, written atomically; missing "
                     "parent folders are created (0755).",
      .fields = {
          NameField(),
          PathField("file"),
          {.name = "content",
           .type = FieldType::kString,
           .description = "The file's bytes. Exactly one of content and source is required."},
          {.name = "source",
           .type = FieldType::kString,
           .description = "A file of the repository (at the declarations' revision) whose bytes "
                          "become `content`. Exactly one of content and source is required.",
           .write_only = true},
          ModeField("0644"),
          OwnerField(),
          GroupField(),
          TypeField(),
          ParentsCreatedField(),
          {.name = "sha256",
           .type = FieldType::kString,
           .computed = true,
           .description = "SHA-256 of the content, lowercase hex."},
          {.name = "size",
           .type = FieldType::kInt,
           .computed = true,
           .description = "The content's size in bytes."},
      }});
  out.push_back(ResourceSchema{
      .kind = kDirectoryKind,
      .description = "A folder beneath the target root; missing parent folders are created "
                     "(0755).",
      .fields = {
          NameField(),
          PathField("folder"),
          ModeField("0755"),
          OwnerField(),
          GroupField(),
          {.name = "purge",
           .type = FieldType::kBool,
           .description = "Remove everything inside that is not managed: entries not listed in "
                          "`managed_children` (nor leading to one of them) are removed on "
                          "create and update, and reported as drift by read. Deleting a purged "
                          "folder deletes its contents too.",
           .write_only = true},
          {.name = "managed_children",
           .type = FieldType::kList,
           .description = "Paths relative to this folder that purge keeps, with everything "
                          "inside them and the folders leading to them. Filled by the engine "
                          "with the paths of the other file resources of the target that lie "
                          "inside this folder; may also be declared.",
           .write_only = true},
          TypeField(),
          ParentsCreatedField(),
          {.name = "unmanaged_children",
           .type = FieldType::kList,
           .description = "With purge: what purge would remove (paths relative to the folder, "
                          "sorted, at most 100). Filled with [] by the provider and compared "
                          "with what is there, so that strays are drift. Not to be declared."},
      }});
  out.push_back(ResourceSchema{
      .kind = kSymlinkKind,
      .description = "A symbolic link beneath the target root; missing parent folders are "
                     "created (0755).",
      .fields = {
          NameField(),
          PathField("symlink"),
          {.name = "target",
           .type = FieldType::kString,
           .required = true,
           .description = "The link's text: where it points (\"../shared/app.conf\", "
                          "\"/etc/ssl\"). It may point anywhere; driftless never writes "
                          "through a symlink."},
          TypeField(),
          ParentsCreatedField(),
      }});
  return out;
}

class FileProvider final : public provider::Provider {
 public:
  std::string Name() const override { return "file"; }
  std::vector<ResourceSchema> Schemas() const override { return FileSchemas(); }
  std::vector<FieldSchema> TargetSchema() const override { return FileTargetSchema(); }

  Result<std::unique_ptr<provider::Target>> Configure(const std::string& target_name,
                                                      const value::Value& settings) const override {
    std::string prefix = "target " + target_name + ": ";
    if (!settings.is_object()) return MakeError(prefix + "settings must be a map");
    for (const auto& [key, v] : settings.as_object()) {
      if (key != "root") {
        return MakeError(prefix + "unknown setting \"" + key +
                         "\" for the file provider (it takes: root)");
      }
    }
    const value::Value* root = settings.Find("root");
    if (root == nullptr || root->is_null()) {
      return MakeError(prefix + "the file provider needs `root`, an absolute folder");
    }
    if (!root->is_string()) {
      return MakeError(prefix + "root must be a string, not " +
                       std::string(value::TypeName(root->type())));
    }
    std::string problem;
    std::optional<std::string> canonical = CanonicalRoot(root->as_string(), problem);
    if (!canonical) return MakeError(prefix + problem);
    return std::unique_ptr<provider::Target>(
        std::make_unique<FileTarget>(target_name, std::move(*canonical)));
  }
};

}  // namespace

const std::vector<ResourceSchema>& FileSchemas() {
  static const std::vector<ResourceSchema> schemas = BuildSchemas();
  return schemas;
}

std::vector<FieldSchema> FileTargetSchema() {
  return {{.name = "root",
           .type = FieldType::kString,
           .required = true,
           .description = "The absolute folder every path of this target is relative to. "
                          "Created (with its parents) on the first write when missing."}};
}

std::unique_ptr<provider::Provider> NewFileProvider() { return std::make_unique<FileProvider>(); }

}  // namespace driftless::providers::file
