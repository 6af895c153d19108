#include "notify/deliver.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/hash.h"
#include "base/strings.h"

extern char** environ;

namespace driftless::notify {

using value::Value;

namespace {

std::string Member(const Value& o, std::string_view key) {
  const Value* v = o.Find(key);
  return v != nullptr && v->is_scalar() && !v->is_null() ? v->ScalarText() : "";
}

// Keeps the response body small; its content is not used.
size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// Milliseconds left before the limits' deadline (at least 1), at most `cap`.
long Within(const DeliveryLimits& limits, long cap) {
  auto now = std::chrono::steady_clock::now();
  if (limits.deadline == std::chrono::steady_clock::time_point::max()) return cap;
  long left = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(limits.deadline - now).count());
  return std::max(1L, std::min(cap, left));
}

// libcurl's progress callback: non-zero aborts the transfer.
int Abort(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* flag = static_cast<const std::atomic<bool>*>(cancel);
  return flag != nullptr && flag->load() ? 1 : 0;
}

Status Post(const std::string& url, const std::vector<std::string>& headers,
            const std::string& body, const DeliveryLimits& limits) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return MakeError("cannot start an HTTP request (libcurl)");
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Within(limits, limits.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Within(limits, limits.total_timeout_ms));
  if (limits.cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, Abort);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(limits.cancel));
  }
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "driftless");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    // curl's own text, without the URL (a Slack URL is a secret).
    return MakeError(std::string("HTTP request failed: ") + curl_easy_strerror(rc));
  }
  if (code < 200 || code > 299) {
    return MakeError("HTTP status " + std::to_string(code) + " (expected 2xx)");
  }
  return Status::Ok();
}

// Blocks SIGPIPE in this thread for its lifetime, so that writing to a child that exited gives
// EPIPE instead of killing the process (whoever calls Deliver: the dispatcher, a test, the
// server); a SIGPIPE raised meanwhile is taken off the thread before the old mask comes back.
class NoSigpipeHere {
 public:
  NoSigpipeHere() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigpipeHere() {
    if (!was_pending_) {
      const timespec now{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  NoSigpipeHere(const NoSigpipeHere&) = delete;
  NoSigpipeHere& operator=(const NoSigpipeHere&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

Status Exec(const ResolvedSink& sink, const std::string& body, const DeliveryLimits& limits) {
  // Everything the child needs is built before fork (the parent may have threads).
  std::vector<std::string> args =
      sink.argv.empty() ? std::vector<std::string>{"/bin/sh", "-c", sink.shell_command} : sink.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The command gets driftless's environment minus the secrets (it names the ones it needs
  // with ${secret.NAME}).
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "DRIFTLESS_SECRET_", 17) != 0) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return MakeError(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return MakeError(std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return MakeError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  setpgid(pid, pid);
  close(in[0]);
  close(out[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  NoSigpipeHere no_sigpipe;
  const int timeout_ms = static_cast<int>(Within(limits, limits.exec_timeout_ms));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t written = 0;
  int to_child = in[1], from_child = out[0];
  if (body.empty()) {
    close(to_child);
    to_child = -1;
  }
  std::string output;
  bool timed_out = false;
  while (from_child >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0 || (limits.cancel != nullptr && limits.cancel->load())) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{from_child, POLLIN, 0}, {to_child, POLLOUT, 0}};
    int n = poll(fds, to_child >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left, 100)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (to_child >= 0 && fds[1].revents != 0) {
      // MSG_NOSIGNAL does not exist for pipes: a child that exits without reading gives EPIPE
      // because this thread blocks SIGPIPE while it writes (NoSigpipeHere).
      ssize_t w = write(to_child, body.data() + written, body.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = body.size();
      if (written == body.size()) {
        close(to_child);
        to_child = -1;
      }
    }
    if (fds[0].revents != 0) {
      char buf[4096];
      ssize_t r = read(from_child, buf, sizeof buf);
      if (r > 0) {
        output.append(buf, static_cast<size_t>(r));
        if (output.size() > 8192) output.erase(0, output.size() - 8192);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(from_child);
        from_child = -1;
      }
    }
  }
  if (to_child >= 0) close(to_child);
  if (from_child >= 0) close(from_child);
  int status = 0;
  if (!timed_out) {
    // Output closed; the child may still run (it closed its descriptors): wait out the deadline.
    while (true) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (std::chrono::steady_clock::now() >= deadline ||
          (limits.cancel != nullptr && limits.cancel->load())) {
        timed_out = true;
        break;
      }
      usleep(10000);
    }
  }
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return MakeError("command timed out after " + std::to_string(timeout_ms / 1000) +
                     "s (or driftless stopped) and was killed");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string tail(Trim(output));
  if (tail.size() > 300) tail = "..." + tail.substr(tail.size() - 300);
  std::string why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  return MakeError("command " + why + (tail.empty() ? "" : ": " + tail));
}

}  // namespace

std::string Signature(const std::string& secret, const std::string& body) {
  return "sha256=" + HmacSha256Hex(secret, body);
}

std::string SlackPayload(const Value& event) {
  const std::string type = Member(event, "type");
  const std::string env = Member(event, "environment");
  const std::string resource = Member(event, "resource");
  std::string text = "*" + type + "* in environment *" + env + "*";
  if (!resource.empty()) text += ": `" + resource + "`";
  for (const char* key : {"summary", "error", "resolution", "policy", "commit", "actor"}) {
    std::string v = Member(event, key);
    if (!v.empty()) text += std::string("\n") + key + ": " + v;
  }
  std::string diff = Member(event, "diff");
  if (!diff.empty()) {
    std::vector<std::string> lines = Split(diff, '\n');
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    constexpr size_t kMaxLines = 20;
    size_t more = lines.size() > kMaxLines ? lines.size() - kMaxLines : 0;
    if (more > 0) lines.resize(kMaxLines);
    std::string block = Join(lines, "\n");
    if (more > 0) block += "\n... " + std::to_string(more) + " more lines";
    text += "\n```\n" + block + "\n```";
  }
  Value o = Value::MakeObject();
  o.Set("text", Value::String(text));
  return value::ToJson(o);
}

Status Deliver(const ResolvedSink& sink, const std::string& event_json,
               const DeliveryLimits& given) {
  DeliveryLimits limits = given;
  if (sink.timeout_seconds > 0) {
    // The sink's own `timeout:` replaces the defaults; the caller's deadline still cuts it.
    limits.total_timeout_ms = static_cast<long>(sink.timeout_seconds * 1000);
    limits.exec_timeout_ms = static_cast<int>(sink.timeout_seconds * 1000);
    limits.connect_timeout_ms = std::min(limits.connect_timeout_ms, limits.total_timeout_ms);
  }
  switch (sink.kind) {
    case SinkKind::kExec:
      return Exec(sink, event_json, limits);
    case SinkKind::kSlack: {
      Result<Value> event = value::ParseJson(event_json);
      if (!event.ok()) return MakeError("the stored event is not JSON: " + event.error().message);
      return Post(sink.url, {"Content-Type: application/json", "Expect:"}, SlackPayload(*event),
                  limits);
    }
    case SinkKind::kWebhook: {
      Result<Value> event = value::ParseJson(event_json);
      if (!event.ok()) return MakeError("the stored event is not JSON: " + event.error().message);
      std::vector<std::string> headers = {
          "Content-Type: application/json",
          "Expect:",  // no 100-continue round trip
          "X-Driftless-Event: " + Member(*event, "type"),
          "X-Driftless-Delivery: " + Member(*event, "id"),
      };
      if (!sink.secret.empty()) {
        headers.push_back("X-Driftless-Signature: " + Signature(sink.secret, event_json));
      }
      return Post(sink.url, headers, event_json, limits);
    }
  }
  return MakeError("unknown sink kind");
}

}  // namespace driftless::notify
