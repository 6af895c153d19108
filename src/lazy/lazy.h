#pragma once

// libpq, libcurl and libgit2 are opened when a command first calls them (dlopen), not when
// driftless starts: together with what they bring (GnuTLS, p11-kit, Kerberos, LDAP, SASL,
// nghttp2, mbedTLS, libssh2, ...) they made about 4 MB of every process resident and ran their
// constructors, for the many commands that use no PostgreSQL state, no HTTP and no Git
// repository. pq.cc, curl.cc and git.cc define the functions driftless calls, with the headers'
// own prototypes (the compiler checks them); each resolves its real function once, on its first
// call.

namespace driftless::lazy {

/// The real function `name` of the library `soname`, opened on first use. A library that cannot
/// be opened ends the process with a message naming it and the package that holds it: before
/// this, the dynamic linker refused to start driftless at all without it.
void* Resolve(const char* soname, const char* package, const char* name);

}  // namespace driftless::lazy
