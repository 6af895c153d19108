// The postgres provider at 1,000 objects, and Ansible's community.postgresql on the same ones.
//
//   driftless-postgres-bench [--dsn DSN] [--roles 250] [--runs 5] [--changes 100] [--bin PATH]
//                            [--no-ansible]
//
// Without --dsn it starts its own server with scripts/pg-test-server.sh (and stops it). In a new
// database it declares, per i < --roles: a role, a schema owned by it, a grant of USAGE on that
// schema and a grant of CONNECT on the database: 4 x 250 = 1,000 objects. It applies them, then
// times `driftless plan --detailed-exitcode` with nothing to change (median of --runs, each
// checked to report no change). Latency: `driftless watch` runs; one GRANT CREATE ON SCHEMA at a
// time, over a connection opened beforehand, each on another schema grant; measured from just
// before the statement to the watch printing that grant's drift.detected (median, 99th
// percentile, max), checked to name the acting role. Ansible: when ansible-playbook, the
// community.postgresql collection and python3-psycopg2 are there, `ansible-playbook --check` of a
// playbook that declares the same 1,000 objects (postgresql_user, postgresql_schema,
// postgresql_privs x 2), timed once, against the same server, and the ratio to the plan.

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using driftless::bench::Clock;
using driftless::bench::Die;
using driftless::bench::LineReader;
using driftless::bench::LoadAverage;
using driftless::bench::Percentile;
using driftless::bench::Seconds;
namespace fs = std::filesystem;

// The server this run started (its folder), stopped on every way out.
std::string g_server_dir;
std::string g_script;

void StopServer() {
  if (!g_server_dir.empty()) {
    std::string cmd = "bash '" + g_script + "' stop '" + g_server_dir + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop the server\n");
  }
}

// Runs a command with its standard output and error to `log`; returns the exit code.
int Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
        const std::string& log = "/dev/null", double* cpu_seconds = nullptr) {
  return driftless::bench::Run(args, env, log, log, cpu_seconds);
}

std::string Exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string err;
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    err = PQresultErrorMessage(r);
  PQclear(r);
  return err;
}

std::string Field(const std::string& dsn, const std::string& key) {
  std::istringstream in(dsn);
  std::string word;
  while (in >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

std::string WithDb(const std::string& dsn, const std::string& db) {
  std::istringstream in(dsn);
  std::string out, word;
  while (in >> word) {
    if (word.rfind("dbname=", 0) != 0) out += word + " ";
  }
  return out + "dbname=" + db;
}

std::string Name(const char* prefix, size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%04zu", prefix, i);
  return buf;
}

int Main(int argc, char** argv) {
  driftless::bench::SetDieContext("driftless-postgres-bench", StopServer);
  std::string dsn, bin = DRIFTLESS_BIN;
  size_t roles = 250, runs = 5, changes = 100;
  bool ansible = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dsn")
      dsn = next();
    else if (a == "--roles")
      roles = std::stoul(next());
    else if (a == "--runs")
      runs = std::stoul(next());
    else if (a == "--changes")
      changes = std::stoul(next());
    else if (a == "--bin")
      bin = next();
    else if (a == "--no-ansible")
      ansible = false;
    else
      Die("unknown option " + a);
  }
  changes = std::min(changes, roles);
  const std::string load_start = LoadAverage();
  fs::path work =
      fs::temp_directory_path() / ("driftless-postgres-bench." + std::to_string(getpid()));
  fs::create_directories(work / "repo");
  const std::string script = std::string(DRIFTLESS_SOURCE_DIR) + "/scripts/pg-test-server.sh";
  const bool own_server = dsn.empty();
  if (own_server) {
    if (Run({"bash", script, "start", (work / "pg").string()}) != 0) Die("cannot start a server");
    g_script = script;
    g_server_dir = (work / "pg").string();
    std::ifstream in(work / "pg" / "dsn");
    std::getline(in, dsn);
  }
  PGconn* admin = PQconnectdb(dsn.c_str());
  if (PQstatus(admin) != CONNECTION_OK)
    Die(std::string("cannot connect: ") + PQerrorMessage(admin));
  const std::string tag = "dlb" + std::to_string(getpid());
  const std::string db = tag;
  if (std::string e = Exec(admin, "CREATE DATABASE " + db); !e.empty()) Die(e);
  const std::string db_dsn = WithDb(dsn, db);

  // The declarations: 4 objects per i.
  {
    std::ofstream(work / "repo" / "driftless.yaml")
        << "project: pgbench\ntargets:\n  db: {provider: postgres, dsn: \"${secret.PG}\"}\n";
    std::ofstream y(work / "repo" / "objects.yaml");
    for (size_t i = 0; i < roles; ++i) {
      std::string r = Name("r", i), s = Name("s", i);
      y << "---\nkind: postgres.role\nname: " << r << "\ntarget: db\nspec: {name: " << tag << "_"
        << r << "}\n"
        << "---\nkind: postgres.schema\nname: " << s
        << "\ntarget: db\nspec: {owner: \"${postgres.role." << r << ".name}\"}\n"
        << "---\nkind: postgres.grant\nname: " << Name("u", i)
        << "\ntarget: db\nspec: {role: \"${postgres.role." << r << ".name}\", on: schema, "
        << "schema: \"${postgres.schema." << s << ".name}\", privileges: [usage]}\n"
        << "---\nkind: postgres.grant\nname: " << Name("c", i)
        << "\ntarget: db\nspec: {role: \"${postgres.role." << r
        << ".name}\", on: database, privileges: [connect]}\n";
    }
  }
  const std::vector<std::string> env = {"DRIFTLESS_SECRET_PG=" + db_dsn};
  const std::string repo = (work / "repo").string(), state = (work / "state.db").string();
  Clock::time_point t0 = Clock::now();
  if (Run({bin, "apply", "--auto-approve", "--dir", repo, "--state", state}, env,
          (work / "apply.log").string()) != 0)
    Die("apply failed: see " + (work / "apply.log").string());
  double apply_s = Seconds(Clock::now() - t0);
  std::vector<double> plans, plan_cpu;
  for (size_t r = 0; r < runs; ++r) {
    t0 = Clock::now();
    double cpu = 0;
    int rc = Run({bin, "plan", "--detailed-exitcode", "--dir", repo, "--state", state}, env,
                 (work / "plan.log").string(), &cpu);
    if (rc != 0) Die("plan found changes or failed (exit " + std::to_string(rc) + ")");
    plans.push_back(Seconds(Clock::now() - t0));
    plan_cpu.push_back(cpu);
  }
  // Where a plan's time goes: one more run with DRIFTLESS_TRACE, its phases.
  std::vector<std::string> traced_env = env;
  traced_env.push_back("DRIFTLESS_TRACE=1");
  (void)Run({bin, "plan", "--dir", repo, "--state", state}, traced_env,
            (work / "trace.log").string());
  std::string trace;
  {
    std::ifstream in(work / "trace.log");
    for (std::string l; std::getline(in, l);) {
      if (l.rfind("trace: ", 0) == 0) trace += (trace.empty() ? "" : "; ") + l.substr(7);
    }
  }

  // Latency.
  int out = -1;
  pid_t watch = driftless::bench::StartPiped(
      {bin, "watch", "--dir", repo, "--state", state, "--interval", "1h"}, env, &out);
  LineReader watch_out(out);
  auto wait_line = [&](const std::vector<std::string>& needles, std::string* found) {
    return watch_out.WaitForLine(needles, std::chrono::seconds(20), found);
  };
  if (!wait_line({"\"type\":\"watch.started\""}, nullptr)) Die("watch did not start");
  PGconn* writer = PQconnectdb(db_dsn.c_str());
  if (PQstatus(writer) != CONNECTION_OK) Die("cannot connect the writer");
  const std::string actor = Field(dsn, "user");
  std::vector<double> ms;
  for (size_t k = 0; k < changes; ++k) {
    size_t i = (k * 97) % roles;
    t0 = Clock::now();
    if (std::string e = Exec(
            writer, "GRANT CREATE ON SCHEMA " + Name("s", i) + " TO " + tag + "_" + Name("r", i));
        !e.empty())
      Die(e);
    std::string line;
    if (!wait_line({"\"type\":\"drift.detected\"", "postgres.grant/" + Name("u", i) + "\""}, &line))
      Die("no drift event for " + Name("u", i));
    ms.push_back(Seconds(Clock::now() - t0) * 1000);
    if (line.find("\"actor\":\"" + actor + "\"") == std::string::npos)
      Die("the drift event does not name the acting role: " + line);
  }
  kill(watch, SIGTERM);
  waitpid(watch, nullptr, 0);
  PQfinish(writer);

  // Ansible, on the same objects (check mode: it reads and compares, changes nothing).
  double ansible_s = -1;
  std::string ansible_note;
  if (ansible) {
    bool have = Run({"ansible-playbook", "--version"}) == 0 &&
                fs::exists(
                    "/usr/lib/python3/dist-packages/ansible_collections/community/"
                    "postgresql") &&
                Run({"/usr/bin/python3", "-c", "import psycopg2"}) == 0;
    if (!have) {
      ansible_note = "not run: ansible-playbook, community.postgresql or python3-psycopg2 missing";
    } else {
      const std::string socket = Field(dsn, "host");
      std::string port = Field(dsn, "port");
      if (port.empty()) port = "5432";
      std::ofstream p(work / "playbook.yml");
      p << "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        << "  vars:\n    pg: &pg\n      login_unix_socket: \"" << socket
        << "\"\n      port: " << port << "\n      login_user: \"" << Field(dsn, "user")
        << "\"\n      db: " << db << "\n    ids: \"{{ range(0, " << roles
        << ") | list }}\"\n  tasks:\n"
        << "    - community.postgresql.postgresql_user:\n        <<: *pg\n        name: \"" << tag
        << "_r{{ '%04d' | format(item) }}\"\n        role_attr_flags: NOLOGIN\n"
        << "      loop: \"{{ ids }}\"\n"
        << "    - community.postgresql.postgresql_schema:\n        <<: *pg\n        name: \"s{{ "
           "'%04d' | format(item) }}\"\n        owner: \""
        << tag << "_r{{ '%04d' | format(item) }}\"\n      loop: \"{{ ids }}\"\n"
        << "    - community.postgresql.postgresql_privs:\n        <<: *pg\n        type: schema\n"
        << "        objs: \"s{{ '%04d' | format(item) }}\"\n        privs: USAGE\n"
        << "        roles: \"" << tag << "_r{{ '%04d' | format(item) }}\"\n"
        << "      loop: \"{{ ids }}\"\n"
        << "    - community.postgresql.postgresql_privs:\n        <<: *pg\n        type: database\n"
        << "        objs: " << db << "\n        privs: CONNECT\n"
        << "        roles: \"" << tag << "_r{{ '%04d' | format(item) }}\"\n"
        << "      loop: \"{{ ids }}\"\n";
      p.close();
      // The latency run left a CREATE on some schemas: put them back so both see no change.
      PGconn* fix = PQconnectdb(db_dsn.c_str());
      for (size_t i = 0; i < roles; ++i)
        (void)Exec(fix,
                   "REVOKE CREATE ON SCHEMA " + Name("s", i) + " FROM " + tag + "_" + Name("r", i));
      PQfinish(fix);
      t0 = Clock::now();
      int rc =
          // Debian's Ansible and python3-psycopg2 are for Debian's python3.
          Run({"ansible-playbook", "-i", "localhost,", "--check", "-e",
               "ansible_python_interpreter=/usr/bin/python3", (work / "playbook.yml").string()},
              {"ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=False"},
              (work / "ansible.log").string());
      ansible_s = Seconds(Clock::now() - t0);
      if (rc != 0) {
        ansible_note = "ansible-playbook failed (exit " + std::to_string(rc) + "), see " +
                       (work / "ansible.log").string();
        ansible_s = -1;
      } else {
        std::ifstream log(work / "ansible.log");
        std::string l, recap;
        while (std::getline(log, l)) {
          if (l.find("localhost") != std::string::npos && l.find("ok=") != std::string::npos)
            recap = l;
        }
        ansible_note = recap;
      }
    }
  }

  // Clean up: the database, then the roles (global).
  (void)Exec(admin, "DROP DATABASE " + db + " WITH (FORCE)");
  for (size_t i = 0; i < roles; ++i)
    (void)Exec(admin, "DROP ROLE IF EXISTS " + tag + "_" + Name("r", i));
  PQfinish(admin);
  if (own_server) (void)Run({"bash", script, "stop", (work / "pg").string()});
  if (ansible_s >= 0 || ansible_note.find("failed") == std::string::npos) fs::remove_all(work);

  std::printf(
      "Machine: %ld CPUs online, load average %s at the start, %s at the end; server: %s\n\n",
      sysconf(_SC_NPROCESSORS_ONLN), load_start.c_str(), LoadAverage().c_str(),
      own_server ? "started by the benchmark (scripts/pg-test-server.sh)" : "--dsn");
  std::printf("| measure | value |\n| --- | ---: |\n");
  std::printf(
      "| objects | %zu (%zu roles, %zu schemas, %zu schema grants, %zu database grants) |\n",
      4 * roles, roles, roles, roles, roles);
  std::printf("| apply from empty | %.2f s |\n", apply_s);
  std::printf("| `driftless plan`, no changes: median of %zu (min-max) | %.3f s (%.3f-%.3f) |\n",
              runs, Percentile(plans, 0.5), Percentile(plans, 0), Percentile(plans, 1));
  std::printf("| same: CPU time (user + system), median | %.3f s |\n", Percentile(plan_cpu, 0.5));
  std::printf(
      "| drift latency, GRANT -> drift.detected with the actor, %zu changes: median | %.1f "
      "ms |\n",
      changes, Percentile(ms, 0.5));
  std::printf("| same: 99th percentile | %.1f ms |\n", Percentile(ms, 0.99));
  std::printf("| same: max | %.1f ms |\n", Percentile(ms, 1));
  if (ansible_s >= 0) {
    std::printf("| `ansible-playbook --check`, same objects (one run) | %.2f s |\n", ansible_s);
    std::printf("| ratio Ansible / driftless plan | %.1fx |\n", ansible_s / Percentile(plans, 0.5));
  }
  if (!ansible_note.empty()) std::printf("\nAnsible: %s\n", ansible_note.c_str());
  if (!trace.empty())
    std::printf("\nPhases of one more plan (DRIFTLESS_TRACE): %s\n", trace.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
