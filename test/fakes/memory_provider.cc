#include "fakes/memory_provider.h"

namespace driftless::test {

using value::Value;

namespace {

class MemoryTarget : public provider::Target {
 public:
  explicit MemoryTarget(std::shared_ptr<MemoryWorld> world) : world_(std::move(world)) {}

  Result<Value> Normalize(const std::string&, const Value& spec, const provider::ReadRepoFile&,
                          std::vector<provider::FieldError>& errors) const override {
    const Value* key = spec.Find("key");
    if (key && key->is_string() && key->as_string().find('/') != std::string::npos) {
      errors.push_back({"key", "must not contain /"});
    }
    return spec;
  }

  Result<std::optional<Value>> Read(const provider::ResourceRequest& req) const override {
    std::lock_guard<std::mutex> g(world_->mu);
    ++world_->reads;
    return Find(req);
  }

  bool ReadsInBatches() const override {
    std::lock_guard<std::mutex> g(world_->mu);
    return world_->batches;
  }

  std::vector<Result<std::optional<Value>>> ReadMany(
      const std::vector<provider::ResourceRequest>& reqs) const override {
    std::lock_guard<std::mutex> g(world_->mu);
    ++world_->batch_reads;
    world_->batched += reqs.size();
    std::vector<Result<std::optional<Value>>> out;
    for (const auto& req : reqs) out.push_back(Find(req));
    return out;
  }

  Result<Value> Create(const provider::ResourceRequest& req, bool adopt) override {
    std::lock_guard<std::mutex> g(world_->mu);
    if (world_->objects.count(Key(req.spec)) && !adopt) {
      return MakeError("object " + Key(req.spec) + " already exists");
    }
    return Write(req.spec);
  }

  Result<Value> Update(const provider::ResourceRequest& req, const Value&) override {
    std::lock_guard<std::mutex> g(world_->mu);
    return Write(req.spec);
  }

  Status Delete(const provider::ResourceRequest& prior) override {
    std::lock_guard<std::mutex> g(world_->mu);
    world_->objects.erase(Key(prior.spec));
    return Status::Ok();
  }

  std::string Describe() const override { return "memory"; }

 private:
  // The object `req` names; world_->mu held.
  std::optional<Value> Find(const provider::ResourceRequest& req) const {
    auto it = world_->objects.find(Key(req.spec));
    if (it == world_->objects.end()) return std::nullopt;
    return it->second;
  }

  static std::string Key(const Value& spec) {
    const Value* k = spec.Find("key");
    return k && k->is_string() ? k->as_string() : "";
  }

  Result<Value> Write(const Value& spec) {
    std::string key = Key(spec);
    if (world_->fail_keys.count(key)) return MakeError("injected failure for " + key);
    Value obj = Value::MakeObject();
    for (const auto& [k, v] : spec.as_object()) {
      Value plain = v;
      plain.set_sensitive(false);
      obj.Set(k, plain);
    }
    const Value* v = spec.Find("value");
    obj.Set("length",
            Value::Int(v && v->is_string() ? static_cast<int64_t>(v->as_string().size()) : 0));
    world_->objects[key] = obj;
    ++world_->writes;
    return obj;
  }

  std::shared_ptr<MemoryWorld> world_;
};

class MemoryProvider : public provider::Provider {
 public:
  explicit MemoryProvider(std::shared_ptr<MemoryWorld> world) : world_(std::move(world)) {}
  std::string Name() const override { return "mem"; }
  std::vector<provider::ResourceSchema> Schemas() const override {
    using provider::FieldType;
    provider::ResourceSchema s;
    s.kind = "mem.object";
    s.fields = {{"key", FieldType::kString, true, false, true, false, "identity"},
                {"value", FieldType::kString, false, false, false, false, "payload"},
                {"tags", FieldType::kMap, false, false, false, false, "labels"},
                {"secret", FieldType::kString, false, false, false, true, "a secret"},
                {"length", FieldType::kInt, false, true, false, false, "computed"}};
    return {s};
  }
  std::vector<provider::FieldSchema> TargetSchema() const override {
    return {{"label", provider::FieldType::kString, false, false, false, false, "any"}};
  }
  Result<std::unique_ptr<provider::Target>> Configure(const std::string&,
                                                      const Value&) const override {
    return std::unique_ptr<provider::Target>(new MemoryTarget(world_));
  }

 private:
  std::shared_ptr<MemoryWorld> world_;
};

}  // namespace

std::unique_ptr<provider::Provider> NewMemoryProvider(std::shared_ptr<MemoryWorld> world) {
  return std::make_unique<MemoryProvider>(std::move(world));
}

}  // namespace driftless::test
