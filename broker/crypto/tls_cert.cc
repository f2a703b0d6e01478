#include "broker/crypto/tls_cert.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "broker/common/status_macros.h"
#include "common/files.h"

namespace credbroker {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509ExtFree {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, X509ExtFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// INTERNAL with OpenSSL's first queued error, which names no key material.
absl::Status OpensslError(absl::string_view what) {
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  char buf[256] = "unknown error";
  if (err != 0) ERR_error_string_n(err, buf, sizeof buf);
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

absl::StatusOr<X509Ptr> ParseCert(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return OpensslError("BIO_new_mem_buf");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError("no PEM certificate found");
  }
  return cert;
}

absl::StatusOr<PkeyPtr> ParseKey(const SecretBytes& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return OpensslError("BIO_new_mem_buf");
  // A null password callback with no password: an encrypted key fails.
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr,
                                      const_cast<char*>("")));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError("no unencrypted PEM private key found");
  }
  return key;
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    if (i > 0) out.push_back(':');
    absl::StrAppend(&out,
                    absl::AsciiStrToUpper(absl::StrFormat("%02x", md[i])));
  }
  return out;
}

absl::Time NotAfter(X509* cert) {
  tm t{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) != 1)
    return absl::InfinitePast();
  return absl::FromUnixSeconds(timegm(&t));
}

absl::Status AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (ext == nullptr)
    return OpensslError(absl::StrCat("certificate extension ", value));
  if (X509_add_ext(cert, ext.get(), -1) != 1)
    return OpensslError("X509_add_ext");
  return absl::OkStatus();
}

absl::Status CheckKeyFileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("TLS key file ", path, " not found"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the TLS key file ", path,
        " is readable by other users; make it private with chmod 600"));
  }
  return absl::OkStatus();
}

// Parses and cross-checks a pair already read.
absl::StatusOr<TlsIdentity> IdentityOf(std::string cert_pem,
                                       SecretBytes key_pem,
                                       absl::string_view where) {
  absl::StatusOr<X509Ptr> cert = ParseCert(cert_pem);
  if (!cert.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": the certificate does not parse (",
                     cert.status().message(), ")"));
  }
  absl::StatusOr<PkeyPtr> key = ParseKey(key_pem);
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": the private key does not parse (",
                     key.status().message(), ")"));
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": the private key does not belong to the certificate"));
  }
  TlsIdentity id;
  id.fingerprint = Fingerprint(cert->get());
  id.not_after = NotAfter(cert->get());
  id.cert_pem = std::move(cert_pem);
  id.key_pem = std::move(key_pem);
  return id;
}

// The subjectAltName entries of `options`; INVALID_ARGUMENT for an IP
// address that does not parse.
absl::StatusOr<std::vector<std::string>> SubjectAltNames(
    const SelfSignedOptions& options) {
  std::vector<std::string> san;
  for (const std::string& d : options.dns_names)
    san.push_back(absl::StrCat("DNS:", d));
  for (const std::string& ip : options.ip_addresses) {
    in6_addr a6;
    in_addr a4;
    if (inet_pton(AF_INET, ip.c_str(), &a4) != 1 &&
        inet_pton(AF_INET6, ip.c_str(), &a6) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("not an IP address: ", ip));
    }
    san.push_back(absl::StrCat("IP:", ip));
  }
  return san;
}

// Sets a random serial number and the validity (an hour back from `now`, to
// `now` + options.validity).
absl::Status SetSerialAndValidity(X509* cert, const SelfSignedOptions& options,
                                  absl::Time now) {
  BnPtr serial(BN_new());
  if (serial == nullptr ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) ==
          nullptr) {
    return OpensslError("certificate serial number");
  }
  const time_t start = absl::ToTimeT(now - absl::Hours(1));
  const time_t end = absl::ToTimeT(now + options.validity);
  if (X509_time_adj_ex(X509_getm_notBefore(cert), 0, 0,
                       const_cast<time_t*>(&start)) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert), 0, 0,
                       const_cast<time_t*>(&end)) == nullptr) {
    return OpensslError("certificate validity");
  }
  return absl::OkStatus();
}

// Sets the subject (= issuer) name and the public key.
absl::Status SetNameAndKey(X509* cert, EVP_PKEY* key,
                           const SelfSignedOptions& options) {
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
      name, "O", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("credbroker"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(options.common_name.c_str()), -1,
      -1, 0);
  X509_set_issuer_name(cert, name);
  if (X509_set_pubkey(cert, key) != 1) return OpensslError("X509_set_pubkey");
  return absl::OkStatus();
}

// The v3 extensions of a leaf certificate for a server or a client.
absl::Status AddLeafExtensions(X509* cert, const SelfSignedOptions& options,
                               const std::vector<std::string>& san) {
  CB_RETURN_IF_ERROR(
      AddExtension(cert, NID_basic_constraints, "critical,CA:FALSE"));
  CB_RETURN_IF_ERROR(
      AddExtension(cert, NID_key_usage, "critical,digitalSignature"));
  CB_RETURN_IF_ERROR(AddExtension(
      cert, NID_ext_key_usage, options.client ? "clientAuth" : "serverAuth"));
  CB_RETURN_IF_ERROR(AddExtension(cert, NID_subject_key_identifier, "hash"));
  if (!san.empty()) {
    CB_RETURN_IF_ERROR(
        AddExtension(cert, NID_subject_alt_name, absl::StrJoin(san, ",")));
  }
  return absl::OkStatus();
}

// The signed `cert` and its `key`, PEM-encoded, as a generated identity.
absl::StatusOr<TlsIdentity> EncodeIdentity(X509* cert, EVP_PKEY* key) {
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (cert_bio == nullptr || key_bio == nullptr ||
      PEM_write_bio_X509(cert_bio.get(), cert) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return OpensslError("encoding the certificate and key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(cert_bio.get(), &data);
  TlsIdentity id;
  id.cert_pem.assign(data, static_cast<size_t>(n));
  n = BIO_get_mem_data(key_bio.get(), &data);
  id.key_pem = SecretBytes(absl::string_view(data, static_cast<size_t>(n)));
  // The memory BIO's copy of the key is wiped before it is freed.
  OPENSSL_cleanse(data, static_cast<size_t>(n));
  id.fingerprint = Fingerprint(cert);
  id.not_after = NotAfter(cert);
  id.generated = true;
  return id;
}

// A self-signed certificate for `key`, and the key, as an identity.
absl::StatusOr<TlsIdentity> SelfSign(EVP_PKEY* key,
                                     const SelfSignedOptions& options,
                                     absl::Time now) {
  CB_ASSIGN_OR_RETURN(std::vector<std::string> san, SubjectAltNames(options));
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpensslError("X509_new");
  X509_set_version(cert.get(), 2);  // v3.
  CB_RETURN_IF_ERROR(SetSerialAndValidity(cert.get(), options, now));
  CB_RETURN_IF_ERROR(SetNameAndKey(cert.get(), key, options));
  CB_RETURN_IF_ERROR(AddLeafExtensions(cert.get(), options, san));
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) {
    return OpensslError("signing the certificate");
  }
  return EncodeIdentity(cert.get(), key);
}

}  // namespace

absl::StatusOr<TlsIdentity> GenerateSelfSigned(const SelfSignedOptions& options,
                                               absl::Time now) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpensslError("generating the EC P-256 key");
  return SelfSign(key.get(), options, now);
}

absl::StatusOr<TlsIdentity> LoadTlsIdentity(const std::string& cert_path,
                                            const std::string& key_path) {
  CB_RETURN_IF_ERROR(CheckKeyFileMode(key_path));
  absl::StatusOr<std::string> cert = ReadFile(cert_path);
  if (!cert.ok()) {
    return absl::Status(cert.status().code(),
                        absl::StrCat("TLS certificate ", cert_path, ": ",
                                     cert.status().message()));
  }
  absl::StatusOr<std::string> key = ReadFile(key_path);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("TLS key ", key_path, ": cannot be read"));
  }
  return IdentityOf(std::move(*cert), SecretBytes::TakeFrom(*key),
                    absl::StrCat(cert_path, " and ", key_path));
}

absl::StatusOr<TlsIdentity> LoadOrCreateSelfSigned(
    const std::string& cert_path, const std::string& key_path, absl::Time now,
    absl::Duration renew_before) {
  struct stat st;
  const bool have_cert = stat(cert_path.c_str(), &st) == 0;
  const bool have_key = stat(key_path.c_str(), &st) == 0;
  std::string replaced;
  if (have_key) {
    // A key others could read is the person's to deal with, not replaced.
    CB_RETURN_IF_ERROR(CheckKeyFileMode(key_path));
  }
  if (have_cert && have_key) {
    absl::StatusOr<TlsIdentity> id = LoadTlsIdentity(cert_path, key_path);
    if (id.ok() && id->not_after - renew_before > now) return id;
    if (id.ok()) {
      // Due: a new certificate for the same key. Only the certificate file
      // changes, in one rename, so a server that re-reads the pair never
      // sees a key and a certificate that do not belong together.
      CB_ASSIGN_OR_RETURN(PkeyPtr key, ParseKey(id->key_pem));
      CB_ASSIGN_OR_RETURN(TlsIdentity renewed,
                          SelfSign(key.get(), SelfSignedOptions(), now));
      CB_RETURN_IF_ERROR(WritePrivateFile(cert_path, renewed.cert_pem, false));
      renewed.renewed = true;
      return renewed;
    }
    replaced = std::string(id.status().message());
  } else if (have_cert != have_key) {
    replaced = absl::StrCat(have_cert ? key_path : cert_path, " is missing");
  }
  CB_ASSIGN_OR_RETURN(TlsIdentity id,
                      GenerateSelfSigned(SelfSignedOptions(), now));
  // The key first: a certificate on disk always has its key beside it (an
  // interruption between the two leaves a pair that is replaced as above).
  CB_RETURN_IF_ERROR(WritePrivateFile(key_path, id.key_pem.Reveal(), false));
  CB_RETURN_IF_ERROR(WritePrivateFile(cert_path, id.cert_pem, false));
  id.replaced = std::move(replaced);
  return id;
}

absl::StatusOr<std::string> LoadCertificateBundle(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) {
    return absl::Status(
        pem.status().code(),
        absl::StrCat("CA certificates ", path, ": ", pem.status().message()));
  }
  if (!ParseCert(*pem).ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " holds no PEM certificate"));
  }
  return *pem;
}

absl::StatusOr<std::string> CertificateFingerprint(absl::string_view cert_pem) {
  CB_ASSIGN_OR_RETURN(X509Ptr cert, ParseCert(cert_pem));
  return Fingerprint(cert.get());
}

}  // namespace credbroker
