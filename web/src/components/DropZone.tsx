import { useState, type DragEvent } from 'react';

export interface DropZoneProps {
  onFiles: (files: File[]) => void;
  disabled?: boolean;
  accept?: string;
}

/** Drag-and-drop area that is also a keyboard-reachable file picker (several files at once). */
export function DropZone({ onFiles, disabled, accept = '.png,.jpg,.jpeg,.dcm,.dicom,image/png,image/jpeg,application/dicom' }: DropZoneProps) {
  const [over, setOver] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    if (disabled) return;
    const files = [...e.dataTransfer.files];
    if (files.length) onFiles(files);
  };
  return (
    <label
      className={`dropzone${over ? ' over' : ''}${disabled ? ' disabled' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        if (!disabled) setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <input
        type="file"
        className="visually-hidden"
        multiple
        accept={accept}
        disabled={disabled}
        data-testid="file-input"
        onChange={(e) => {
          const files = [...(e.target.files ?? [])];
          e.target.value = '';
          if (files.length) onFiles(files);
        }}
      />
      <span className="dropzone-icon" aria-hidden="true">
        ⤒
      </span>
      <span className="dropzone-title">Drop chest X-rays here, or choose files</span>
      <span className="dropzone-sub">PNG, JPEG or DICOM · several at once for a batch</span>
    </label>
  );
}
