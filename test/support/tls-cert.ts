import { execFile } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

/**
 * A self-signed certificate for localhost and 127.0.0.1, made when a test
 * runs: by `openssl` when the machine has it, else by node:crypto and a
 * small DER writer below (an ECDSA P-256 key and a v3 certificate with the
 * subjectAltNames TLS clients check). Nothing is checked in, nothing expires
 * in a fixture.
 */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** How it was made: "openssl" or "node:crypto". */
  madeBy: string;
}

const run = promisify(execFile);

/** makeTestCertificate writes cert.pem and key.pem into dir. */
export async function makeTestCertificate(
  dir: string,
  options: { via?: "openssl" | "node" } = {},
): Promise<TestCertificate> {
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  let madeBy = "node:crypto";
  if (options.via !== "node" && (await hasOpenssl())) {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    madeBy = "openssl";
  } else {
    const { cert, key } = selfSignedWithNode("localhost", [127, 0, 0, 1]);
    await writeFile(certFile, cert);
    await writeFile(keyFile, key, { mode: 0o600 });
  }
  return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile), madeBy };
}

async function hasOpenssl(): Promise<boolean> {
  try {
    await run("openssl", ["version"]);
    return true;
  } catch {
    return false;
  }
}

/** selfSignedWithNode builds a self-signed X.509 v3 certificate (PEM) and its PKCS#8 key (PEM). */
export function selfSignedWithNode(dnsName: string, ip: readonly number[]): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const ecdsaWithSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const name = seq(set(seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from(dnsName, "utf8")))));
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(randomBytes(8)),
    ecdsaWithSha256,
    name,
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 2 * 86_400_000))),
    name,
    publicKey.export({ type: "spki", format: "der" }),
    tlv(
      0xa3,
      seq(
        // basicConstraints, critical: CA true, so the certificate can be its own trust anchor.
        seq(oid("2.5.29.19"), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(tlv(0x01, Buffer.from([0xff]))))),
        // subjectAltName: dNSName [2], iPAddress [7].
        seq(oid("2.5.29.17"), tlv(0x04, seq(tlv(0x82, Buffer.from(dnsName, "ascii")), tlv(0x87, Buffer.from(ip))))),
      ),
    ),
  );
  const signature = sign("sha256", tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
  const key = createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" })).export({
    type: "pkcs8",
    format: "pem",
  });
  return { cert: pem, key: String(key) };
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const length =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

function seq(...parts: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(parts));
}

function set(...parts: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(parts));
}

/** integer encodes unsigned big-endian bytes as a positive DER INTEGER. */
function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-23T10:00:00.000Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text, "ascii"));
}
