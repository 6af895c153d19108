// libcurl, opened on first use (lazy.h).
#define CURL_DISABLE_TYPECHECK  // the header's checking macros would rename the functions below
#include <curl/curl.h>

#include <cstdarg>

#include "lazy/lazy.h"

namespace {

// The real function of the same name, resolved once (a function-local static: thread-safe).
#define DL_REAL(name)                                         \
  static const auto real = reinterpret_cast<decltype(&name)>( \
      driftless::lazy::Resolve("libcurl.so.4", "libcurl4 (libcurl.so.4)", #name))

}  // namespace

extern "C" {

void curl_easy_cleanup(CURL* curl) {
  DL_REAL(curl_easy_cleanup);
  real(curl);
}
CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  DL_REAL(curl_easy_getinfo);
  va_list ap;
  va_start(ap, info);
  void* out = va_arg(ap, void*);  // every CURLINFO takes one pointer to where the value goes
  va_end(ap);
  return real(curl, info, out);
}
CURL* curl_easy_init(void) {
  DL_REAL(curl_easy_init);
  return real();
}
CURLcode curl_easy_perform(CURL* curl) {
  DL_REAL(curl_easy_perform);
  return real(curl);
}
void curl_easy_reset(CURL* curl) {
  DL_REAL(curl_easy_reset);
  real(curl);
}
CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  DL_REAL(curl_easy_setopt);
  // One argument, whose type the option's number range says (curl.h's CURLOPTTYPE_*).
  va_list ap;
  va_start(ap, option);
  CURLcode code;
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    long v = va_arg(ap, long);
    code = real(curl, option, v);
  } else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {
    curl_off_t v = va_arg(ap, curl_off_t);
    code = real(curl, option, v);
  } else {
    void* v = va_arg(ap, void*);  // objects, function pointers, blobs
    code = real(curl, option, v);
  }
  va_end(ap);
  return code;
}
const char* curl_easy_strerror(CURLcode code) {
  DL_REAL(curl_easy_strerror);
  return real(code);
}
CURLcode curl_global_init(long flags) {
  DL_REAL(curl_global_init);
  return real(flags);
}
CURLMcode curl_multi_add_handle(CURLM* multi_handle, CURL* curl_handle) {
  DL_REAL(curl_multi_add_handle);
  return real(multi_handle, curl_handle);
}
CURLMcode curl_multi_cleanup(CURLM* multi_handle) {
  DL_REAL(curl_multi_cleanup);
  return real(multi_handle);
}
CURLMsg* curl_multi_info_read(CURLM* multi_handle, int* msgs_in_queue) {
  DL_REAL(curl_multi_info_read);
  return real(multi_handle, msgs_in_queue);
}
CURLM* curl_multi_init(void) {
  DL_REAL(curl_multi_init);
  return real();
}
CURLMcode curl_multi_perform(CURLM* multi_handle, int* running_handles) {
  DL_REAL(curl_multi_perform);
  return real(multi_handle, running_handles);
}
CURLMcode curl_multi_poll(CURLM* multi_handle, struct curl_waitfd extra_fds[],
                          unsigned int extra_nfds, int timeout_ms, int* ret) {
  DL_REAL(curl_multi_poll);
  return real(multi_handle, extra_fds, extra_nfds, timeout_ms, ret);
}
CURLMcode curl_multi_remove_handle(CURLM* multi_handle, CURL* curl_handle) {
  DL_REAL(curl_multi_remove_handle);
  return real(multi_handle, curl_handle);
}
struct curl_slist* curl_slist_append(struct curl_slist* list, const char* data) {
  DL_REAL(curl_slist_append);
  return real(list, data);
}
void curl_slist_free_all(struct curl_slist* list) {
  DL_REAL(curl_slist_free_all);
  real(list);
}

}  // extern "C"
