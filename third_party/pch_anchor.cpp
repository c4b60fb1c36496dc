// Anchor translation unit: lets a library with the shared PCH exist before it has sources.
