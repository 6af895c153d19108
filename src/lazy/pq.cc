// libpq, opened on first use (lazy.h).
#include <libpq-fe.h>

#include "lazy/lazy.h"

namespace {

// The real function of the same name, resolved once (a function-local static: thread-safe).
#define DL_REAL(name)                                         \
  static const auto real = reinterpret_cast<decltype(&name)>( \
      driftless::lazy::Resolve("libpq.so.5", "libpq5 (libpq.so.5)", #name))

}  // namespace

extern "C" {

void PQclear(PGresult* res) {
  DL_REAL(PQclear);
  real(res);
}
char* PQcmdStatus(PGresult* res) {
  DL_REAL(PQcmdStatus);
  return real(res);
}
char* PQcmdTuples(PGresult* res) {
  DL_REAL(PQcmdTuples);
  return real(res);
}
PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                          int expand_dbname) {
  DL_REAL(PQconnectdbParams);
  return real(keywords, values, expand_dbname);
}
void PQconninfoFree(PQconninfoOption* options) {
  DL_REAL(PQconninfoFree);
  real(options);
}
PQconninfoOption* PQconninfoParse(const char* conninfo, char** errmsg) {
  DL_REAL(PQconninfoParse);
  return real(conninfo, errmsg);
}
int PQconsumeInput(PGconn* conn) {
  DL_REAL(PQconsumeInput);
  return real(conn);
}
char* PQencryptPasswordConn(PGconn* conn, const char* passwd, const char* user,
                            const char* algorithm) {
  DL_REAL(PQencryptPasswordConn);
  return real(conn, passwd, user, algorithm);
}
char* PQerrorMessage(const PGconn* conn) {
  DL_REAL(PQerrorMessage);
  return real(conn);
}
PGresult* PQexec(PGconn* conn, const char* query) {
  DL_REAL(PQexec);
  return real(conn, query);
}
PGresult* PQexecParams(PGconn* conn, const char* command, int nParams, const Oid* paramTypes,
                       const char* const* paramValues, const int* paramLengths,
                       const int* paramFormats, int resultFormat) {
  DL_REAL(PQexecParams);
  return real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
              resultFormat);
}
PGresult* PQexecPrepared(PGconn* conn, const char* stmtName, int nParams,
                         const char* const* paramValues, const int* paramLengths,
                         const int* paramFormats, int resultFormat) {
  DL_REAL(PQexecPrepared);
  return real(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}
void PQfinish(PGconn* conn) {
  DL_REAL(PQfinish);
  real(conn);
}
void PQfreemem(void* ptr) {
  DL_REAL(PQfreemem);
  real(ptr);
}
int PQgetisnull(const PGresult* res, int tup_num, int field_num) {
  DL_REAL(PQgetisnull);
  return real(res, tup_num, field_num);
}
int PQgetlength(const PGresult* res, int tup_num, int field_num) {
  DL_REAL(PQgetlength);
  return real(res, tup_num, field_num);
}
char* PQgetvalue(const PGresult* res, int tup_num, int field_num) {
  DL_REAL(PQgetvalue);
  return real(res, tup_num, field_num);
}
int PQnfields(const PGresult* res) {
  DL_REAL(PQnfields);
  return real(res);
}
PGnotify* PQnotifies(PGconn* conn) {
  DL_REAL(PQnotifies);
  return real(conn);
}
int PQntuples(const PGresult* res) {
  DL_REAL(PQntuples);
  return real(res);
}
PGresult* PQprepare(PGconn* conn, const char* stmtName, const char* query, int nParams,
                    const Oid* paramTypes) {
  DL_REAL(PQprepare);
  return real(conn, stmtName, query, nParams, paramTypes);
}
void PQreset(PGconn* conn) {
  DL_REAL(PQreset);
  real(conn);
}
size_t PQresultMemorySize(const PGresult* res) {
  DL_REAL(PQresultMemorySize);
  return real(res);
}
char* PQresultErrorField(const PGresult* res, int fieldcode) {
  DL_REAL(PQresultErrorField);
  return real(res, fieldcode);
}
char* PQresultErrorMessage(const PGresult* res) {
  DL_REAL(PQresultErrorMessage);
  return real(res);
}
ExecStatusType PQresultStatus(const PGresult* res) {
  DL_REAL(PQresultStatus);
  return real(res);
}
PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
  DL_REAL(PQsetNoticeProcessor);
  return real(conn, proc, arg);
}
int PQsocket(const PGconn* conn) {
  DL_REAL(PQsocket);
  return real(conn);
}
ConnStatusType PQstatus(const PGconn* conn) {
  DL_REAL(PQstatus);
  return real(conn);
}
PGTransactionStatusType PQtransactionStatus(const PGconn* conn) {
  DL_REAL(PQtransactionStatus);
  return real(conn);
}

}  // extern "C"
