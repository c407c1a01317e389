/** Model names the worker builds (the source of trainer/model-names.json: npm run contracts). Import-free: the web UI lists them. */
export const MODEL_NAMES = [
  'compact_cnn',
  'compact_resnet',
  'efficientnet_b0',
  'efficientnet_b1',
  'efficientnet_b2',
  'efficientnet_b3',
  'efficientnet_b4',
  'resnet18',
  'resnet50',
  'densenet121',
] as const;
