#include "server/controller/log.h"

#include <unistd.h>

#include <mutex>

#include "base/identity.h"

namespace driftless::server::controller {

using value::Value;

std::string Log::Line(std::string_view level, std::string_view msg, const Fields& fields) {
  Value o = Value::MakeObject();
  for (const auto& [k, v] : fields) o.Set(k, v);
  // The standard members win over a field of the same name.
  o.Set("time", Value::Double(static_cast<double>(NowUnixMillis()) / 1000.0));
  o.Set("level", Value::String(std::string(level)));
  o.Set("msg", Value::String(std::string(msg)));
  return value::ToJson(o);
}

void Log::Write(std::string_view level, std::string_view msg, const Fields& fields) {
  static std::mutex mu;
  std::string line = Line(level, msg, fields) + "\n";
  std::lock_guard<std::mutex> lock(mu);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n <= 0) return;  // nowhere to log to: never fail the server over it
    off += static_cast<size_t>(n);
  }
}

}  // namespace driftless::server::controller
