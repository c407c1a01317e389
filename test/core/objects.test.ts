import { FsObjectStore, openObjectStore } from '../../src/core/objects/index.js';
import { describeObjectStoreContract } from '../contract/object-store.contract.js';
import { startS3Server, tempHome, uniqueName } from '../helpers/engines.js';

describeObjectStoreContract('filesystem (embedded)', async () => {
  const home = tempHome();
  return { value: new FsObjectStore(home.dir), cleanup: async () => home.cleanup() };
});

describeObjectStoreContract('S3 protocol (s3rver on loopback)', async () => {
  const server = await startS3Server();
  const store = await openObjectStore(`s3://${uniqueName('bucket').replace(/_/g, '-')}/some/prefix`, {
    endpoint: server.endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    forcePathStyle: true,
    createBucket: true,
  });
  return { value: store, cleanup: async () => (await store.close(), await server.close()) };
});
