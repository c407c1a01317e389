import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A throwaway certificate authority made with openssl for one test (EC P-256: fast). */
export class TestCa {
  readonly dir: string;
  readonly name: string;
  readonly cert: string;
  readonly key: string;
  #serial = 1;

  constructor(dir: string, name = 'ca') {
    this.dir = dir;
    this.name = name;
    this.cert = path.join(dir, `${name}.crt`);
    this.key = path.join(dir, `${name}.key`);
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', this.key, '-out', this.cert, '-days', '2', '-subj', `/CN=xray test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }

  /**
   * Issues a certificate for 127.0.0.1 / localhost usable by servers and clients; returns its
   * files and serial (hex, upper case as Node reports it).
   */
  issue(file: string, cn: string): { cert: string; key: string; serial: string } {
    const cert = path.join(this.dir, `${file}.crt`);
    const key = path.join(this.dir, `${file}.key`);
    const csr = path.join(this.dir, `${file}.csr`);
    const ext = path.join(this.dir, `${file}.ext`);
    const serial = (0x1000 + this.#serial++).toString(16).toUpperCase().padStart(4, '0');
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', this.key, '-set_serial', `0x${serial}`, '-out', cert, '-days', '1', '-extfile', ext]);
    return { cert, key, serial };
  }

  pem(): Buffer {
    return readFileSync(this.cert);
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
