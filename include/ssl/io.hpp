#pragma once
// Umbrella for ssl/io/ (filled in as components land).
