#pragma once

namespace driftless {

/// Gives the heap's free pages back to the system (glibc's malloc_trim): for a long-running
/// process after work that freed much (a served watch after a check, a run that finished), so
/// that its resident memory shows what it holds, not what it once held.
void ReturnFreeMemory();

/// At most `arenas` malloc arenas (glibc's M_ARENA_MAX; its default is 8 a core): a process
/// with many threads that each allocate now and then (the server's watches and runs) otherwise
/// keeps a heap per thread, each with its own free memory. Call before the threads start.
/// MALLOC_ARENA_MAX in the environment, when set, wins.
void LimitMallocArenas(int arenas);

}  // namespace driftless
