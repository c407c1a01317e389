// The monitoring variables are part of the platform configuration (src/core/config/monitoring.ts).
export { monitoringSettingsSchema, loadMonitoringSettings, monitoringSettings, type MonitoringSettings } from '../core/config/index.js';
