import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Built into web/dist and served by the gateway at '/', which also answers /api/<service>/… —
// absolute asset paths, so deep links such as /models/pneumonia load the same bundle.
// `npm run dev`-style work: `vite` from web/ proxies /api to a running gateway.
export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { '/api': process.env.XRAY_URL ?? 'http://127.0.0.1:8080' },
  },
});
